"""Checks of a finished segmentation against what the model is expected to find (self-test and pytest).

The expectations live in one table, ``Resources/SelfTest/expectedOrgans.json``: which organs the bundled
demo model must find in the bundled sample CT, each with a volume range in ml. The Slicer self-test and
``Testing/GASASegmenter/test_demoModel.py`` both call :func:`organVolumeProblems`, so the numbers are
updated in one place when a new demo model lands. Importable with slicer-core alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util.numpy_support import vtk_to_numpy

__all__ = ["OrganExpectation", "SelfTestExpectations", "loadExpectations", "organVolumeProblems", "segmentVolumesMl"]

#: The table, next to the module's other resources.
EXPECTATIONS_PATH = Path(__file__).resolve().parents[1] / "Resources" / "SelfTest" / "expectedOrgans.json"


@dataclass(frozen=True)
class OrganExpectation:
    """An organ the model must find: segment name and the plausible volume range (ml)."""

    name: str
    minMl: float
    maxMl: float


@dataclass(frozen=True)
class SelfTestExpectations:
    """The model (catalogue id), the sample CT's file name, the run options and the organs."""

    modelId: str
    sample: str
    options: dict[str, Any]
    organs: tuple[OrganExpectation, ...]


def loadExpectations(path: Path | None = None) -> SelfTestExpectations:
    """Read the expectation table.

    Raises:
        ValueError: the table is malformed (says which entry and what was expected).
    """
    tablePath = Path(path) if path is not None else EXPECTATIONS_PATH
    data = json.loads(tablePath.read_text(encoding="utf-8"))
    organs = []
    for item in data["organs"]:
        low, high = float(item["min_ml"]), float(item["max_ml"])
        if not 0 <= low < high:
            raise ValueError(f"{tablePath}: organ {item['name']!r} needs 0 <= min_ml < max_ml, got {low}, {high}")
        organs.append(OrganExpectation(str(item["name"]), low, high))
    if not organs:
        raise ValueError(f"{tablePath}: expected at least one organ, got none")
    return SelfTestExpectations(str(data["model_id"]), str(data["sample"]), dict(data["options"]), tuple(organs))


def segmentVolumesMl(segmentationNode: slicer.vtkMRMLSegmentationNode) -> dict[str, float]:
    """Volume (ml) of every segment, from its binary labelmap (shared layers: voxels holding its label value)."""
    segmentation = segmentationNode.GetSegmentation()
    representation = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    volumes = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        image = segment.GetRepresentation(representation)
        if image is None or image.GetPointData().GetScalars() is None:
            volumes[segment.GetName()] = 0.0
            continue
        matrix = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(matrix)
        voxelMl = abs(np.linalg.det(np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)]))) / 1000
        voxels = int(np.count_nonzero(vtk_to_numpy(image.GetPointData().GetScalars()) == segment.GetLabelValue()))
        volumes[segment.GetName()] = voxels * voxelMl
    return volumes


def organVolumeProblems(volumesMl: Mapping[str, float], expectations: SelfTestExpectations) -> list[str]:
    """One line per expected organ that is missing or outside its range; ``[]`` when all fit."""
    problems = []
    for organ in expectations.organs:
        if organ.name not in volumesMl:
            problems.append(f"no segment named {organ.name!r} (segments: {sorted(volumesMl)})")
            continue
        volume = volumesMl[organ.name]
        if not organ.minMl <= volume <= organ.maxMl:
            problems.append(
                f"{organ.name}: {volume:.1f} ml, expected {organ.minMl:g}-{organ.maxMl:g} ml for {expectations.modelId}"
            )
    return problems
