#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv (first run only), then segment the bundled sample CT
# with the bundled demonstration model. Writes out/example_ct_seg.nii.gz (label map in the CT's exact
# geometry), out/overlay.png (axial + coronal) and out/volumes.csv (per-organ volumes in ml).
# Extra arguments go to gasa-segment (e.g. --device cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/gasa-segment ] || bash scripts/setup.sh
mkdir -p out
.venv/bin/gasa-segment Resources/SampleData/example_ct.nii.gz \
  -o out/example_ct_seg.nii.gz -m Resources/models/gasa-demo-btcv \
  --overlay out/overlay.png --volumes out/volumes.csv --overwrite "$@"
echo "wrote out/example_ct_seg.nii.gz, out/overlay.png and out/volumes.csv"
