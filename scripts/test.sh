#!/usr/bin/env bash
# The test suite (the README's test command; CI runs it after ruff). Sets up .venv first on a fresh
# machine. Extra arguments go to pytest, e.g. `-m slow` or `-m gpu` (on a CUDA machine).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] && .venv/bin/python -c "import GASACore, nnunetv2, slicer" 2>/dev/null || bash scripts/setup.sh
. .venv/bin/activate
python -m pytest Testing "$@"
