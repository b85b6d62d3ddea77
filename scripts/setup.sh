#!/usr/bin/env bash
# Create .venv with the CPU build of torch 2.13.0 and GASASegmenter with its test dependencies.
#
# dynamic-network-architectures and nnunetv2 are installed with --no-deps: the former declares timm,
# which pulls torchvision and with it a ~5 GB CUDA build of torch, although its U-Nets never import
# timm. Their real requirements are listed in .ci/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu) picks the index of the CPU build where PyPI's
# default wheel would be a CUDA build (GitHub's runners); the project's own machines have it on local disk.
python -m pip install --quiet ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==2.13.0"
printf 'torch==2.13.0\n' > .venv/torch-constraint.txt
python -m pip install --quiet -c .venv/torch-constraint.txt -r .ci/requirements.txt
python -m pip install --quiet --no-deps "dynamic-network-architectures==0.4.4" "nnunetv2==2.8.1"
python -m pip install --quiet --no-deps -e .

python - <<'PY'
import sys

import torch

problems = []
if torch.__version__.split("+")[0] != "2.13.0":
    problems.append(f"torch {torch.__version__} instead of 2.13.0")
if torch.version.cuda is not None:
    problems.append(f"a CUDA build of torch (CUDA {torch.version.cuda}) instead of the CPU build")
try:
    import torchvision  # noqa: F401
except ImportError:
    pass
else:
    problems.append("torchvision is installed (a dependency dragged it in)")
if problems:
    sys.exit("setup failed: " + "; ".join(problems))
print(f"torch {torch.__version__} (CPU build) OK")
PY
