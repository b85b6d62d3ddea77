"""Engine fixtures: real nnU-Net v2 results folders (trained briefly on the sample CT) and small CT files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).parent))

from nnunet_fixture import (
    intensity_properties,
    load_training_case,
    train_test_weights,
    write_nnunet_results_folder,
)


@pytest.fixture(scope="session")
def trained_case(shared_data: Path):
    ct, target = load_training_case(
        shared_data / "totalsegmentator" / "example_ct.nii.gz",
        shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz",
    )
    return train_test_weights(ct, target), intensity_properties(ct, target)


@pytest.fixture(scope="session")
def nnunet_model(tmp_path_factory: pytest.TempPathFactory, trained_case) -> Path:
    """nnU-Net v2 results folder whose plan keeps the CT's 3 mm spacing."""
    weights, props = trained_case
    return write_nnunet_results_folder(tmp_path_factory.mktemp("same_spacing"), weights, props)


@pytest.fixture(scope="session")
def nnunet_model_resampling(tmp_path_factory: pytest.TempPathFactory, trained_case) -> Path:
    """nnU-Net v2 results folder whose plan resamples the 3 mm CT to 4.5 x 4 x 4 mm (z, y, x)."""
    weights, props = trained_case
    return write_nnunet_results_folder(
        tmp_path_factory.mktemp("resampling"), weights, props, spacing_zyx=(4.5, 4.0, 4.0)
    )


@pytest.fixture(scope="session")
def small_ct(tmp_path_factory: pytest.TempPathFactory, example_ct: Path) -> Path:
    """A 40 x 64 x 64 crop (z, y, x) of the real CT around the liver, RAS, int16 - quick to segment."""
    image = sitk.ReadImage(str(example_ct))
    crop = sitk.Cast(image[30:94, 20:84, 50:90], sitk.sitkInt16)
    path = tmp_path_factory.mktemp("ct") / "small_ct.nii.gz"
    sitk.WriteImage(crop, str(path))
    return path
