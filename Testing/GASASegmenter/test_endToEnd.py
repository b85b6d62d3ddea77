"""The module logic against real slicer-core MRML and the real ``gasa-segment`` engine process."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import slicer
import vtk
from GASASegmenterLib.job import JobState
from GASASegmenterLib.logic import SegmenterLogic, SegmentOptions
from GASASegmenterLib.volumeIO import ijkToRasArray
from sceneHelpers import sceneSnapshot
from vtk.util.numpy_support import vtk_to_numpy

from GASACore.labels import LABEL_SETS

BTCV = LABEL_SETS["btcv"]
FAST = SegmentOptions(device="cpu", tta=False)
SPLEEN_ENTRY = (
    "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure~"
    "SCT^78961009^Spleen~^^~Anatomic codes - DICOM master list~^^~^^"
)


def _directions(kind: str) -> np.ndarray:
    if kind == "ras":
        return np.eye(3)
    if kind == "lps":
        return np.diag([-1.0, -1.0, 1.0])
    a, b = math.radians(30), math.radians(10)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return rz @ rx


def _reorient(volume: slicer.vtkMRMLScalarVolumeNode, kind: str) -> None:
    matrix = ijkToRasArray(volume)
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    matrix[:3, :3] = _directions(kind) * spacing
    matrix[:3, 3] = (12.5, -40.25, 7.0)
    volume.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(matrix))


def _labelArrayInVolumeGrid(segmentationNode, volume) -> np.ndarray:
    """All segments as one label map in the input volume's voxel grid, array (k, j, i)."""
    scene = segmentationNode.GetScene()
    labelNode = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    ids = vtk.vtkStringArray()
    segmentationNode.GetSegmentation().GetSegmentIDs(ids)
    ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(segmentationNode, ids, labelNode, volume)
    assert ok
    image = labelNode.GetImageData()
    assert np.allclose(ijkToRasArray(labelNode), ijkToRasArray(volume), atol=1e-4)
    assert image.GetDimensions() == volume.GetImageData().GetDimensions()
    array = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(image.GetDimensions()[::-1]).copy()
    scene.RemoveNode(labelNode)
    return array


def _assertSegmentsDescribeModel(segmentationNode) -> None:
    segmentation = segmentationNode.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(BTCV) == 13
    for index, label in enumerate(BTCV):
        segment = segmentation.GetNthSegment(index)
        assert segment.GetName() == label.name
        assert np.allclose(segment.GetColor(), [c / 255 for c in label.color])
        entry = slicer.vtkSlicerTerminologyEntry()
        assert slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(segment.GetTerminology(), entry)
        assert entry.GetCategoryObject().GetCodeValue() == label.terminology.category.value
        assert entry.GetTypeObject().GetCodeValue() == label.terminology.type.value
        assert entry.GetTypeObject().GetCodingSchemeDesignator() == "SCT"
        modifier = label.terminology.modifier
        assert (entry.GetTypeModifierObject().GetCodeValue() or "") == (modifier.value if modifier else "")
    assert segmentation.GetNthSegment(0).GetTerminology() == SPLEEN_ENTRY
    assert (
        segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("left kidney"))
        .GetTerminology()
        .endswith("SCT^64033007^Kidney~SCT^7771000^Left~Anatomic codes - DICOM master list~^^~^^")
    )


def test_segments_ras_lps_and_oblique_volumes_in_their_own_geometry(scene, ct_volume, tiny_bundle: Path) -> None:
    logic = SegmenterLogic(scene)
    arrays = {}
    for kind in ("ras", "lps", "oblique"):
        _reorient(ct_volume, kind)
        segmentationNode = logic.segment(ct_volume, tiny_bundle, FAST, createSurface=(kind == "ras"))
        _assertSegmentsDescribeModel(segmentationNode)
        referenceVolume = segmentationNode.GetNodeReference(
            slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()
        )
        assert referenceVolume is ct_volume
        shared = (
            segmentationNode.GetSegmentation()
            .GetNthSegment(0)
            .GetRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
        )
        matrix = vtk.vtkMatrix4x4()
        shared.GetImageToWorldMatrix(matrix)
        assert np.allclose(slicer.util.arrayFromVTKMatrix(matrix), ijkToRasArray(ct_volume), atol=1e-4), kind
        assert segmentationNode.GetSegmentation().GetNumberOfLayers() == 1
        arrays[kind] = _labelArrayInVolumeGrid(segmentationNode, ct_volume)
    # The engine sees voxels and spacing, not directions: the label map in voxel space must not depend on
    # the orientation. A flip or transposition anywhere between node, file and segments breaks this.
    assert arrays["ras"].any()
    np.testing.assert_array_equal(arrays["ras"], arrays["lps"])
    np.testing.assert_array_equal(arrays["ras"], arrays["oblique"])


def test_roi_crop_into_chosen_existing_segmentation(scene, ct_volume, tiny_bundle: Path) -> None:
    logic = SegmenterLogic(scene)
    existing = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine")
    oldSegment = slicer.vtkSegment()
    oldSegment.SetName("old")
    oldImage = slicer.vtkOrientedImageData()
    oldImage.SetDimensions(2, 2, 2)
    oldImage.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    oldSegment.AddRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(), oldImage)
    existing.GetSegmentation().AddSegment(oldSegment, "old")
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    matrix = ijkToRasArray(ct_volume)
    start, stop = np.array([20, 15, 25, 1.0]), np.array([90, 80, 85, 1.0])
    low, high = (matrix @ start)[:3], (matrix @ stop)[:3]
    roi.SetXYZ(*((low + high) / 2))
    roi.SetRadiusXYZ(*(np.abs(high - low) / 2))

    with pytest.raises(ValueError, match="Replace existing segments"):
        logic.startSegmentation(ct_volume, tiny_bundle, FAST, outputSegmentation=existing)
    assert existing.GetSegmentation().GetNumberOfSegments() == 1

    before = len(sceneSnapshot(scene))
    result = logic.segment(
        ct_volume, tiny_bundle, FAST, outputSegmentation=existing, replaceExisting=True, roi=roi, createSurface=False
    )
    assert result is existing
    assert len(sceneSnapshot(scene)) == before + 1  # the display node, nothing else
    assert existing.GetSegmentation().GetSegmentIdBySegmentName("old") == ""
    _assertSegmentsDescribeModel(existing)
    labels = _labelArrayInVolumeGrid(existing, ct_volume)  # (k, j, i)
    outside = labels.copy()
    outside[25:86, 15:81, 20:91] = 0
    assert labels[25:86, 15:81, 20:91].any()
    assert not outside.any()


def test_failing_model_leaves_the_scene_and_says_why(scene, ct_volume, tiny_bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    weights = broken / "fold_0.safetensors"
    data = bytearray(weights.read_bytes())
    data[-16:] = bytes(b ^ 0xFF for b in data[-16:])
    weights.write_bytes(bytes(data))
    logic = SegmenterLogic(scene)
    before = sceneSnapshot(scene)
    job = logic.startSegmentation(ct_volume, broken, FAST)
    assert SegmenterLogic.waitFor(job, timeout=120) == JobState.FAILED
    assert "SHA-256" in job.message or "sha256" in job.message.lower(), job.message
    assert "exit code 1" in job.message
    assert not job.tempDir.exists()
    assert sceneSnapshot(scene) == before


def test_a_second_segment_makes_a_second_segmentation(scene, ct_volume, tiny_bundle: Path) -> None:
    """What the panel does on a second click: the output stays "Create new segmentation" (None)."""
    logic = SegmenterLogic(scene)
    first = logic.segment(ct_volume, tiny_bundle, FAST, outputSegmentation=None, createSurface=False)
    second = logic.segment(ct_volume, tiny_bundle, FAST, outputSegmentation=None, createSurface=False)
    assert second is not first
    assert [first.GetName(), second.GetName()] == ["CT segmentation", "CT segmentation_1"]
    assert first.GetSegmentation().GetNumberOfSegments() == second.GetSegmentation().GetNumberOfSegments() == 13
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 2
    with pytest.raises(ValueError, match="Replace existing segments"):
        logic.startSegmentation(ct_volume, tiny_bundle, FAST, outputSegmentation=second)


def test_the_result_sits_under_the_input_volumes_study(scene, ct_volume, tiny_bundle: Path) -> None:
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    patient = hierarchy.CreateSubjectItem(hierarchy.GetSceneItemID(), "Patient 1")
    study = hierarchy.CreateStudyItem(patient, "CT abdomen")
    other = hierarchy.CreateStudyItem(patient, "Earlier study")
    volumeItem = hierarchy.GetItemByDataNode(ct_volume) or hierarchy.CreateItem(study, ct_volume)
    hierarchy.SetItemParent(volumeItem, study)
    node = SegmenterLogic(scene).segment(ct_volume, tiny_bundle, FAST, createSurface=False)
    item = hierarchy.GetItemByDataNode(node)
    assert item and hierarchy.GetItemParent(item) == study != other
    assert hierarchy.GetItemParent(study) == patient
