"""Cohort fixtures: a folder of small real CT crops (plus a corrupt file) and the bundled demo model."""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk

DEMO = Path(__file__).resolve().parents[3] / "Resources" / "models" / "gasa-demo-btcv"

#: Crops (x, y, z index ranges of the 122 x 101 x 112 example CT) of a few windows each with the demo model.
CROPS = {
    "case1": (slice(30, 94), slice(20, 84), slice(50, 90)),
    "case2": (slice(20, 76), slice(10, 66), slice(40, 72)),
    "case3": (slice(44, 100), slice(30, 90), slice(60, 96)),
}


@pytest.fixture(scope="session")
def demo_model() -> Path:
    if not (DEMO / "model.json").is_file():
        raise FileNotFoundError(f"the bundled demo model is missing: expected {DEMO}/model.json")
    return DEMO


@pytest.fixture(scope="session")
def ct_crops(tmp_path_factory: pytest.TempPathFactory, example_ct: Path) -> dict[str, Path]:
    """Three small int16 crops of the real CT, written once per session: name -> file."""
    image = sitk.ReadImage(str(example_ct))
    folder = tmp_path_factory.mktemp("crops")
    crops = {}
    for name, (x, y, z) in CROPS.items():
        crops[name] = folder / f"{name}.nii.gz"
        sitk.WriteImage(sitk.Cast(image[x, y, z], sitk.sitkInt16), str(crops[name]))
    return crops
