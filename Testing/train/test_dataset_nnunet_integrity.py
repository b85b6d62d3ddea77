"""nnU-Net v2's own verify_dataset_integrity accepts what the converters write (slow: starts worker processes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from train.datasets import TOTALSEG_TO_BTCV, convert_kits23, convert_pairs


@pytest.mark.slow
def test_nnunet_accepts_converted_datasets(tmp_path: Path, shared_data: Path) -> None:
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity as verify

    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    (images / "ex.nii.gz").symlink_to(shared_data / "totalsegmentator" / "example_ct.nii.gz")
    (labels / "ex.nii.gz").symlink_to(shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz")
    btcv = {f"organ{v}": v for v in range(1, 14)}
    verify(str(convert_pairs(images, labels, tmp_path / "raw", labels=btcv, remap=TOTALSEG_TO_BTCV)), 1)

    ct = sitk.ReadImage(str(images / "ex.nii.gz"))[40:60, 40:60, 40:60]
    case = tmp_path / "kits" / "case_00000"
    case.mkdir(parents=True)
    sitk.WriteImage(ct, str(case / "imaging.nii.gz"))
    seg = sitk.GetImageFromArray(np.tile(np.arange(4, dtype=np.uint8), (20, 20, 5)))
    seg.CopyInformation(ct)
    sitk.WriteImage(seg, str(case / "segmentation.nii.gz"))
    verify(str(convert_kits23(case.parent, tmp_path / "raw")), 1)
