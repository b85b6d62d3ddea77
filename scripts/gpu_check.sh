#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): the `gpu` tests and the GPU benchmark against nnUNetPredictor (same
# model, same CTs, same settings) in <= 8 minutes; writes gpu_check.md / gpu_check.json under $OUT, else
# bench/results/gpu_check. Options: --dry-run (run nothing, report the plan), --device cpu|cuda|cuda:N,
# --out DIR. Exit code 0 only when every step succeeded.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ]; then . .venv/bin/activate; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python bench/gpu_check.py "$@"
