#!/usr/bin/env bash
# Fetch the real CT sample data the tests read (../shared/data in the project's own CI) from the public
# repository wasserth/TotalSegmentator (Apache-2.0), folder tests/reference_files/, at the commit NOTICE
# records. Usage: bash scripts/fetch_shared_data.sh DEST   (DEST/totalsegmentator/ is created).
set -euo pipefail
DEST=${1:?usage: fetch_shared_data.sh DEST}
COMMIT=0e65a448d557382b1e925276212b3bec7f5aff83
TARGET="$DEST/totalsegmentator"
if [ -f "$TARGET/example_ct.nii.gz" ] && [ -d "$TARGET/example_ct_dicom" ]; then
  echo "sample data already in $TARGET"
  exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
git -C "$WORK" init --quiet repo
git -C "$WORK/repo" remote add origin https://github.com/wasserth/TotalSegmentator.git
git -C "$WORK/repo" sparse-checkout set --no-cone /tests/reference_files/
git -C "$WORK/repo" fetch --quiet --depth 1 --filter=blob:none origin "$COMMIT"
git -C "$WORK/repo" checkout --quiet FETCH_HEAD
mkdir -p "$TARGET"
cp -R "$WORK/repo/tests/reference_files/." "$TARGET/"
echo "sample data from TotalSegmentator@$COMMIT in $TARGET"
