"""Volume nodes to files for the engine, and the engine's label maps back, without touching the scene.

Everything here works in a private *scratch* scene: the user's scene is only read. Geometry follows
Slicer's conventions: a volume node's ``IJKToRAS`` matrix maps voxel indices (i, j, k) to RAS mm; its
``vtkImageData`` has origin 0 and spacing 1. Files are written with Slicer's own storage node (NRRD in
LPS), so RAS, LPS and oblique directions reach the engine unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import slicer
import vtk

__all__ = ["CropBox", "LabelMapGeometryError", "cropBoxFromRoi", "readLabelMap", "writeVolumeForEngine"]

logger = logging.getLogger(__name__)

#: Largest difference (mm, or unitless for directions) tolerated between input and output geometry.
GEOMETRY_TOLERANCE = 1e-3


class LabelMapGeometryError(RuntimeError):
    """The engine's label map does not have the geometry of the volume it was given."""


@dataclass(frozen=True)
class CropBox:
    """A voxel box of a volume: first index ``start`` (i, j, k) and ``size`` (voxels along i, j, k)."""

    start: tuple[int, int, int]
    size: tuple[int, int, int]

    @property
    def extent(self) -> tuple[int, int, int, int, int, int]:
        """The VTK extent (i0, i1, j0, j1, k0, k1), inclusive."""
        (i, j, k), (ni, nj, nk) = self.start, self.size
        return (i, i + ni - 1, j, j + nj - 1, k, k + nk - 1)


def ijkToRasArray(volumeNode: slicer.vtkMRMLVolumeNode) -> np.ndarray:
    """The node's 4x4 IJK-to-RAS matrix as a numpy array."""
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _worldToNodeMatrix(node: slicer.vtkMRMLTransformableNode) -> np.ndarray:
    transformNode = node.GetParentTransformNode()
    if transformNode is None:
        return np.eye(4)
    if not transformNode.IsTransformToWorldLinear():
        raise ValueError(f"volume {node.GetName()!r} is under a non-linear transform; harden it before cropping")
    matrix = vtk.vtkMatrix4x4()
    transformNode.GetMatrixTransformFromWorld(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def cropBoxFromRoi(volumeNode: slicer.vtkMRMLScalarVolumeNode, roiNode: slicer.vtkMRMLNode) -> CropBox:
    """The smallest voxel box of ``volumeNode`` that holds the ROI's bounding box, clipped to the volume.

    Raises:
        ValueError: the ROI does not overlap the volume.
    """
    bounds = [0.0] * 6
    roiNode.GetRASBounds(bounds)
    corners = np.array([[x, y, z, 1.0] for x in bounds[0:2] for y in bounds[2:4] for z in bounds[4:6]], dtype=float).T
    rasToIjk = np.linalg.inv(ijkToRasArray(volumeNode)) @ _worldToNodeMatrix(volumeNode)
    ijk = (rasToIjk @ corners)[:3]
    dims = volumeNode.GetImageData().GetDimensions()
    low = [max(0, math.floor(ijk[a].min() + 0.5)) for a in range(3)]
    high = [min(dims[a] - 1, math.ceil(ijk[a].max() - 0.5)) for a in range(3)]
    if any(h < lo for lo, h in zip(low, high, strict=True)):
        raise ValueError(
            f"ROI {roiNode.GetName()!r} does not overlap volume {volumeNode.GetName()!r}; move the ROI onto the image"
        )
    return CropBox(start=tuple(low), size=tuple(h - lo + 1 for lo, h in zip(low, high, strict=True)))  # type: ignore[arg-type]


def _scratchVolume(scene: slicer.vtkMRMLScene, nodeClass: str) -> slicer.vtkMRMLVolumeNode:
    node = scene.AddNewNodeByClass(nodeClass)
    return node


def writeVolumeForEngine(
    volumeNode: slicer.vtkMRMLScalarVolumeNode, path: Path, cropBox: CropBox | None = None
) -> np.ndarray:
    """Write ``volumeNode`` (optionally only ``cropBox``) to ``path`` (.nrrd) in its own geometry.

    The node's parent transform is not applied: the segmentation gets the same parent transform.

    Returns:
        The IJK-to-RAS matrix of the written image (the crop's corner as origin).
    """
    imageData = volumeNode.GetImageData() if volumeNode is not None else None
    if imageData is None or imageData.GetNumberOfPoints() == 0:
        name = volumeNode.GetName() if volumeNode is not None else None
        raise ValueError(f"input volume must hold image data, got {name!r} without voxels")
    if imageData.GetNumberOfScalarComponents() != 1:
        raise ValueError(
            f"input volume must be a single-component CT, got {imageData.GetNumberOfScalarComponents()} components"
        )
    scene = slicer.vtkMRMLScene()
    scratch = _scratchVolume(scene, "vtkMRMLScalarVolumeNode")
    ijkToRas = ijkToRasArray(volumeNode)
    if cropBox is not None:
        clip = vtk.vtkExtractVOI()
        clip.SetInputData(imageData)
        clip.SetVOI(*cropBox.extent)
        shift = vtk.vtkImageChangeInformation()
        shift.SetInputConnection(clip.GetOutputPort())
        shift.SetOutputExtentStart(0, 0, 0)
        shift.SetOutputOrigin(0, 0, 0)
        shift.Update()
        outputImage = vtk.vtkImageData()
        outputImage.DeepCopy(shift.GetOutput())
        ijkToRas = ijkToRas.copy()
        ijkToRas[:3, 3] = (ijkToRas @ np.array([*cropBox.start, 1.0]))[:3]
    else:
        outputImage = imageData
    scratch.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijkToRas))
    scratch.SetAndObserveImageData(outputImage)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    storage.SetUseCompression(False)
    if not storage.WriteData(scratch):
        raise OSError(f"could not write the input volume to {path}: {storage.GetWriteStateAsString()}")
    return ijkToRas


def readLabelMap(path: Path, expectedIjkToRas: np.ndarray, expectedSize: tuple[int, int, int]) -> vtk.vtkImageData:
    """Read the engine's label map and check it has exactly the geometry of the image it was given.

    Returns:
        The voxels (origin 0, spacing 1, extent starting at 0), integer type.

    Raises:
        OSError: the file cannot be read.
        LabelMapGeometryError: size, spacing, origin or directions differ from the input's.
    """
    scene = slicer.vtkMRMLScene()
    labelNode = _scratchVolume(scene, "vtkMRMLLabelMapVolumeNode")
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    storage.SetSingleFile(True)
    if not Path(path).is_file() or not storage.ReadData(labelNode) or labelNode.GetImageData() is None:
        raise OSError(f"could not read the engine's label map {path}")
    image = labelNode.GetImageData()
    size = tuple(image.GetDimensions())
    if size != tuple(expectedSize):
        raise LabelMapGeometryError(f"label map size must be {tuple(expectedSize)} (the input's), got {size}")
    got = ijkToRasArray(labelNode)
    difference = float(np.abs(got - expectedIjkToRas).max())
    if difference > GEOMETRY_TOLERANCE:
        raise LabelMapGeometryError(
            f"label map geometry must equal the input's (IJK-to-RAS {expectedIjkToRas.tolist()}), "
            f"got {got.tolist()} (largest difference {difference:.4g})"
        )
    if image.GetScalarType() in (vtk.VTK_FLOAT, vtk.VTK_DOUBLE):
        cast = vtk.vtkImageCast()
        cast.SetInputData(image)
        cast.SetOutputScalarTypeToShort()
        cast.Update()
        image = cast.GetOutput()
    result = vtk.vtkImageData()
    result.DeepCopy(image)
    return result
