"""Bundle fixtures: one tiny GASA-UNet bundle (folder and zip) and one real nnU-Net v2 results folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from bundle_helpers import TINY_PLAN, TINY_PREPROCESSING, zip_folder
from nnunet_fixture import TEST_PLAN, intensity_properties, load_training_case, write_nnunet_results_folder

from GASACore.bundle import ArchitectureSpec, save_bundle
from GASACore.labels import BTCV_LABELS
from GASACore.network import build_network


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real GASA-UNet bundle (random weights, BTCV labels) with a typed pre-processing configuration."""
    import torch

    torch.manual_seed(0)
    architecture = ArchitectureSpec("gasa-unet", TINY_PLAN, 1, len(BTCV_LABELS) + 1, {"dim": 10, "heads": 2})
    weights = build_network(
        "gasa-unet", plan=TINY_PLAN, num_input_channels=1, num_classes=14, dim=10, heads=2
    ).state_dict()
    target = tmp_path_factory.mktemp("bundles") / "tiny-btcv"
    save_bundle(
        target,
        metadata={
            "name": "tiny-btcv",
            "version": "0.0.1",
            "description": "test bundle with random weights",
            "license": "Apache-2.0",
            "intended_use": "tests only",
        },
        architecture=architecture,
        preprocessing=TINY_PREPROCESSING,
        labels=BTCV_LABELS,
        fold_weights={"fold_0": weights},
    )
    return target


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
