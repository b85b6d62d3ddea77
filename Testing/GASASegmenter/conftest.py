"""Fixtures for the module logic: a real slicer-core scene, the sample CT as a volume node, tiny bundles."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO_ROOT / "GASASegmenter"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

import slicer  # noqa: E402 - slicer-core, a test requirement: a missing one must fail, not skip
from GASASegmenterLib.volumeIO import ijkToRasArray  # noqa: E402
from sceneHelpers import loadVolume  # noqa: E402
from tiny_models import write_tiny_bundle  # noqa: E402


def tinyBundle(target: Path, *, spacing: float = 12.0, name: str = "tiny-btcv") -> Path:
    """The tests' tiny GASA-UNet bundle (Testing/tiny_models.py) at an isotropic ``spacing`` in mm."""
    return write_tiny_bundle(target, spacing=(spacing, spacing, spacing), name=name)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tinyBundle(tmp_path_factory.mktemp("models") / "tiny-btcv")


@pytest.fixture(scope="session")
def slow_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same network at 2 mm: hundreds of windows on the sample CT, long enough to cancel mid-run."""
    return tinyBundle(tmp_path_factory.mktemp("models") / "slow-btcv", spacing=2.0, name="slow-btcv")


@pytest.fixture()
def scene() -> slicer.vtkMRMLScene:
    return slicer.vtkMRMLScene()


@pytest.fixture()
def ct_volume(scene: slicer.vtkMRMLScene, example_ct: Path) -> slicer.vtkMRMLScalarVolumeNode:
    return loadVolume(scene, example_ct)


__all__ = ["ijkToRasArray", "tinyBundle"]
