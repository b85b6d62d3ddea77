"""Label map -> segments of a ``vtkMRMLSegmentationNode``: names, colours and SNOMED CT terminology.

All segments share one binary labelmap (Slicer's shared labelmap layers), each with its label value, in
the input volume's voxel grid, so the reference geometry of the segmentation is exactly the input's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import slicer
import vtk
from vtk.util.numpy_support import vtk_to_numpy

from GASACore.labels import Code, Label

from .volumeIO import CropBox

__all__ = [
    "ANATOMIC_CONTEXT",
    "TERMINOLOGY_CONTEXT",
    "addSegmentsFromLabelMap",
    "ensureConverterRules",
    "terminologyEntryString",
]

logger = logging.getLogger(__name__)

#: Slicer's terminology context for categories/types such as "Anatomical Structure" / "Spleen".
TERMINOLOGY_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
#: Slicer's anatomic context (region) list; our segments name no region.
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"


def _codeField(code: Code | None) -> str:
    if code is None:
        return "^^"
    return f"{code.scheme}^{code.value}^{code.meaning}"


def terminologyEntryString(label: Label) -> str:
    """Slicer's serialized terminology entry for a label (empty when the label has no terminology).

    Format (``vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry``)::

        context~category~type~typeModifier~anatomicContext~region~regionModifier

    each code as ``scheme^value^meaning``; e.g. ``...~SCT^123037004^Anatomical Structure~SCT^64033007^Kidney~
    SCT^24028007^Right~Anatomic codes - DICOM master list~^^~^^``.
    """
    term = label.terminology
    if term is None:
        return ""
    fields = [
        TERMINOLOGY_CONTEXT,
        _codeField(term.category),
        _codeField(term.type),
        _codeField(term.modifier),
        ANATOMIC_CONTEXT,
        "^^",
        "^^",
    ]
    return "~".join(fields)


def ensureConverterRules() -> None:
    """Register Slicer's labelmap <-> surface conversion rules when the application has not (slicer-core)."""
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    rules = factory.GetConverterRules()
    names = {rules[i].GetClassName() for i in range(len(rules))} if isinstance(rules, (list, tuple)) else set()
    for ruleClass in (
        slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule,
        slicer.vtkClosedSurfaceToBinaryLabelmapConversionRule,
    ):
        if ruleClass.__name__ not in names:
            factory.RegisterConverterRule(ruleClass())


def _sharedLabelmap(
    labelImage: vtk.vtkImageData, referenceIjkToRas: np.ndarray, cropBox: CropBox | None
) -> slicer.vtkOrientedImageData:
    """The label voxels placed in the reference volume's voxel grid (extent shifted by the crop start)."""
    image = labelImage
    if image.GetScalarType() != vtk.VTK_UNSIGNED_CHAR:
        cast = vtk.vtkImageCast()
        cast.SetInputData(image)
        low, high = image.GetScalarRange()
        if low < 0 or high > 65535:
            raise ValueError(f"label values must be in 0-65535, got {low:g}-{high:g}")
        if high <= 255:
            cast.SetOutputScalarTypeToUnsignedChar()
        else:
            cast.SetOutputScalarTypeToUnsignedShort()
        cast.Update()
        image = cast.GetOutput()
    oriented = slicer.vtkOrientedImageData()
    if cropBox is not None:
        translate = vtk.vtkImageTranslateExtent()
        translate.SetInputData(image)
        translate.SetTranslation(*cropBox.start)
        translate.Update()
        oriented.DeepCopy(translate.GetOutput())
    else:
        oriented.DeepCopy(image)
    oriented.SetOrigin(0.0, 0.0, 0.0)
    oriented.SetSpacing(1.0, 1.0, 1.0)
    oriented.SetImageToWorldMatrix(slicer.util.vtkMatrixFromArray(referenceIjkToRas))
    return oriented


def addSegmentsFromLabelMap(
    segmentationNode: slicer.vtkMRMLSegmentationNode,
    labelImage: vtk.vtkImageData,
    labels: Sequence[Label],
    referenceIjkToRas: np.ndarray,
    cropBox: CropBox | None = None,
) -> list[str]:
    """Add one segment per model label (empty ones too, so the count is the model's).

    Args:
        segmentationNode: the node to fill (its reference geometry is set by the caller).
        labelImage: label voxels from :func:`readLabelMap` (extent from 0, origin 0, spacing 1).
        labels: the model's foreground labels.
        referenceIjkToRas: IJK-to-RAS of the input volume (the segmentation's reference geometry).
        cropBox: where ``labelImage`` lies in the input volume, ``None`` for the whole volume.

    Returns:
        The new segment IDs, in label order.
    """
    known = {label.value for label in labels}
    present = {int(v) for v in np.unique(vtk_to_numpy(labelImage.GetPointData().GetScalars()))}
    unknown = sorted(present - known - {0})
    if unknown:
        logger.warning("label map holds values %s that the model does not name; they are ignored", unknown)
    shared = _sharedLabelmap(labelImage, referenceIjkToRas, cropBox)
    segmentation = segmentationNode.GetSegmentation()
    representation = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    if segmentation.GetSourceRepresentationName() != representation:
        segmentation.SetSourceRepresentationName(representation)
    segmentIds = []
    for label in labels:
        segment = slicer.vtkSegment()
        segment.SetName(label.name)
        segment.SetColor(*(c / 255.0 for c in label.color))
        if hasattr(segment, "SetNameAutoGenerated"):
            segment.SetNameAutoGenerated(False)
            segment.SetColorAutoGenerated(False)
        entry = terminologyEntryString(label)
        if entry:
            segment.SetTerminology(entry)
        segment.AddRepresentation(representation, shared)
        segment.SetLabelValue(label.value)
        segmentId = segmentation.GenerateUniqueSegmentID(label.name.replace(" ", "_"))
        if not segmentation.AddSegment(segment, segmentId):
            raise RuntimeError(f"could not add segment {label.name!r} to {segmentationNode.GetName()!r}")
        segmentIds.append(segmentId)
    return segmentIds
