"""Bundle fixtures: one tiny GASA-UNet bundle (folder and zip) and one real nnU-Net v2 results folder."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from nnunet_fixture import TEST_PLAN, intensity_properties, load_training_case, write_nnunet_results_folder

from GASACore.bundle import ArchitectureSpec, save_bundle
from GASACore.labels import BTCV_LABELS
from GASACore.network import UNetPlan, build_network
from GASACore.preprocessing import IntensityProperties, PreprocessingConfig

#: A GASA-UNet small enough to segment a CT crop in a second: bottleneck 2 x 4 x 4.
TINY_PLAN = UNetPlan(
    patch_size=(16, 32, 32),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(4, 8, 16, 16),
)
#: 12 mm target spacing (x, y, z = 10, 12, 12.5 mm for variety): few windows on any CT.
TINY_PREPROCESSING = PreprocessingConfig(
    spacing=(12.5, 12.0, 10.0),
    patch_size=TINY_PLAN.patch_size,
    intensity_properties=(IntensityProperties(mean=50.0, std=100.0, percentile_00_5=-1000.0, percentile_99_5=1000.0),),
)


def zip_folder(folder: Path, archive: Path, inner: str = "model") -> Path:
    """``archive`` holding every file of ``folder`` under ``inner/``."""
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, f"{inner}/{file.name}")
    return archive


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
