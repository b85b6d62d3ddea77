"""Scene helpers for the module tests (a module of its own: test files import it by name, never ``conftest``)."""

from __future__ import annotations

from pathlib import Path

import slicer

__all__ = ["loadVolume", "sceneSnapshot"]


def loadVolume(scene: slicer.vtkMRMLScene, path: Path, name: str = "CT") -> slicer.vtkMRMLScalarVolumeNode:
    """Read an image file into a new scalar volume node of ``scene`` with Slicer's own reader."""
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    if not storage.ReadData(volume):
        raise OSError(f"cannot read {path}")
    volume.SetAndObserveStorageNodeID(storage.GetID())
    return volume


def sceneSnapshot(scene: slicer.vtkMRMLScene) -> list[tuple[str, str]]:
    """(class, ID) of every node: equal snapshots mean no node was added or removed."""
    return [(scene.GetNthNode(i).GetClassName(), scene.GetNthNode(i).GetID()) for i in range(scene.GetNumberOfNodes())]
