"""Bundle fixtures: one tiny GASA-UNet bundle (folder and zip) and one real nnU-Net v2 results folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from bundle_helpers import zip_folder
from nnunet_fixture import TEST_PLAN, intensity_properties, load_training_case, write_nnunet_results_folder
from tiny_models import write_tiny_bundle

from GASACore.network import build_network


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real GASA-UNet bundle (random weights, BTCV labels) with a typed pre-processing configuration."""
    return write_tiny_bundle(
        tmp_path_factory.mktemp("bundles") / "tiny-btcv",
        block_options={"dim": 10, "heads": 2},
        metadata={"license": "Apache-2.0", "intended_use": "tests only"},
    )


@pytest.fixture(scope="session")
def tiny_bundle_zip(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zip_folder(tiny_bundle, tmp_path_factory.mktemp("zips") / "tiny-btcv.zip")


@pytest.fixture(scope="session")
def nnunet_results(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """An nnU-Net v2 results folder (plans, dataset.json, fold_0 checkpoint) planned on the real sample CT."""
    ct, target = load_training_case(
        shared_data / "totalsegmentator" / "example_ct.nii.gz",
        shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz",
    )
    weights = build_network("nnunet", plan=TEST_PLAN, num_input_channels=1, num_classes=4).state_dict()
    return write_nnunet_results_folder(
        tmp_path_factory.mktemp("nnunet"), weights, intensity_properties(ct, target), spacing_zyx=(4.5, 4.0, 3.5)
    )
