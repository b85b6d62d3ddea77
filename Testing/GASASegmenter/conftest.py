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


def tinyBundle(target: Path, *, spacing: float = 12.0, name: str = "tiny-btcv") -> Path:
    """A real GASA-UNet bundle with random weights, a small plan and the BTCV labels (13 organs)."""
    import torch

    from GASACore.bundle import ArchitectureSpec, save_bundle
    from GASACore.labels import LABEL_SETS
    from GASACore.network import UNetPlan
    from GASACore.preprocessing import PreprocessingConfig
    from GASACore.preprocessing.config import IntensityProperties

    labels = LABEL_SETS["btcv"]
    plan = UNetPlan(
        patch_size=(16, 32, 32),
        strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
        kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
        features_per_stage=(4, 8, 16, 16),
    )
    architecture = ArchitectureSpec(name="gasa-unet", plan=plan, num_input_channels=1, num_classes=len(labels) + 1)
    preprocessing = PreprocessingConfig(
        spacing=(spacing, spacing, spacing),
        patch_size=plan.patch_size,
        intensity_properties=(
            IntensityProperties(mean=50.0, std=100.0, percentile_00_5=-1000.0, percentile_99_5=1000.0),
        ),
    )
    torch.manual_seed(0)
    from GASACore.bundle.model import ModelBundle

    probe = ModelBundle(target, {}, architecture, preprocessing.to_json(), labels, (), (), None, "bundle")
    network = probe.build_network()
    save_bundle(
        target,
        metadata={"name": name, "version": "0.0.1", "description": "test bundle with random weights"},
        architecture=architecture,
        preprocessing=preprocessing.to_json(),
        labels=labels,
        fold_weights={"fold_0": network.state_dict()},
    )
    return target


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


def loadVolume(scene: slicer.vtkMRMLScene, path: Path, name: str = "CT") -> slicer.vtkMRMLScalarVolumeNode:
    """Read an image file into a new scalar volume node of ``scene`` with Slicer's own reader."""
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    if not storage.ReadData(volume):
        raise OSError(f"cannot read {path}")
    volume.SetAndObserveStorageNodeID(storage.GetID())
    return volume


@pytest.fixture()
def ct_volume(scene: slicer.vtkMRMLScene, example_ct: Path) -> slicer.vtkMRMLScalarVolumeNode:
    return loadVolume(scene, example_ct)


def sceneSnapshot(scene: slicer.vtkMRMLScene) -> list[tuple[str, str]]:
    """(class, ID) of every node: equal snapshots mean no node was added or removed."""
    return [(scene.GetNthNode(i).GetClassName(), scene.GetNthNode(i).GetID()) for i in range(scene.GetNumberOfNodes())]


__all__ = ["ijkToRasArray", "loadVolume", "sceneSnapshot", "tinyBundle"]
