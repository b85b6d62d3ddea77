#!/usr/bin/env bash
# The test suite (the README's test command runs this). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
python -m pytest Testing "$@"
