"""Header fields of a 3D Slicer segmentation file (``.seg.nrrd``) with one segment per label.

The label map itself is an ordinary 3D NRRD; 3D Slicer reads the segments (name, colour, label value,
terminology) from ``Segment<N>_<Field>:=value`` key/value pairs in the header, which SimpleITK writes from
an image's metadata dictionary. All segments share one layer (the label map), so each segment's extent is
the whole grid. Field formats follow Slicer's ``vtkMRMLSegmentationStorageNode``.
"""

from __future__ import annotations

import colorsys
import logging
from collections.abc import Sequence

import numpy as np

from GASACore.io.geometry import Geometry
from GASACore.labels import Label, terminology_entry

__all__ = ["reference_image_geometry", "segmentation_metadata"]

logger = logging.getLogger(__name__)

_REFERENCE_GEOMETRY_HELP = (
    "Image geometry description string determining the geometry of the labelmap that is created in course of "
    "conversion. Can be copied from a volume, using the button."
)


def _number(value: float) -> str:
    return repr(float(value) + 0.0)  # + 0.0 turns -0.0 into 0.0


def reference_image_geometry(geometry: Geometry) -> str:
    """Slicer's serialised image geometry: the 4x4 image-to-world (RAS) matrix row by row, then the extent.

    Each number is followed by ``;``, e.g. ``"3;0;0;-193.1;...;0;0;0;1;0;127;0;127;0;33;"``.
    """
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = np.reshape(geometry.direction, (3, 3)) @ np.diag(geometry.spacing)
    ijk_to_lps[:3, 3] = geometry.origin
    ijk_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ijk_to_lps
    extent = [bound for size in geometry.size for bound in (0, size - 1)]
    return "".join(f"{_number(v)};" for v in ijk_to_ras.ravel()) + "".join(f"{e};" for e in extent)


def _check_name(label: Label) -> None:
    if not label.name or any(char in label.name for char in "\n\r"):
        raise ValueError(f"a segment name must be a non-empty single line, got {label.name!r} (label {label.value})")
    if len(label.color) != 3 or any(not 0 <= c <= 255 for c in label.color):
        raise ValueError(f"a segment colour must be RGB 0-255, got {label.color!r} (label {label.value})")


def _generated_label(value: int) -> Label:
    red, green, blue = colorsys.hsv_to_rgb((value * 0.618034) % 1.0, 0.6, 0.9)
    return Label(value, f"Segment_{value}", (round(red * 255), round(green * 255), round(blue * 255)))


def _segments(label_info: Sequence[Label] | None, present: Sequence[int]) -> list[tuple[Label, bool]]:
    """(label, auto-generated) per segment, sorted by value: every described label plus unnamed present ones."""
    described = {label.value: label for label in label_info or ()}
    if len(described) != len(label_info or ()):
        raise ValueError(f"label values must be unique, got {[label.value for label in label_info or ()]}")
    unnamed = sorted(set(present) - set(described))
    if label_info is not None and unnamed:
        logger.warning("label values %s have no name in label_info; they are written as Segment_<value>", unnamed)
    segments = [(label, False) for label in described.values()]
    segments += [(_generated_label(value), True) for value in unnamed]
    return sorted(segments, key=lambda item: item[0].value)


def segmentation_metadata(
    geometry: Geometry, present: Sequence[int], label_info: Sequence[Label] | None = None
) -> dict[str, str]:
    """NRRD header key/value pairs that make a label map a 3D Slicer segmentation.

    Args:
        geometry: the label map's grid (x, y, z size; LPS).
        present: the non-zero label values found in the label map.
        label_info: names, colours (RGB 0-255) and terminology; each becomes a segment even when empty.
            Present values without an entry become segments named ``Segment_<value>``.

    Returns:
        ``{"Segment0_Name": "spleen", ...}`` plus the ``Segmentation_*`` fields.

    Raises:
        ValueError: duplicate label values, a value outside 1-65535, a multi-line name or a code holding
            one of Slicer's separators (``~ ^ |``).
    """
    extent = " ".join(f"0 {size - 1}" for size in geometry.size)
    metadata = {
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
        "Segmentation_ConversionParameters": (
            f"Reference image geometry|{reference_image_geometry(geometry)}|{_REFERENCE_GEOMETRY_HELP}&"
        ),
    }
    for index, (label, generated) in enumerate(_segments(label_info, present)):
        if not 1 <= label.value <= 65535:
            raise ValueError(f"segment label values must be 1-65535, got {label.value} ({label.name!r})")
        _check_name(label)
        tags = f"TerminologyEntry:{terminology_entry(label)}|" if label.terminology else ""
        fields = {
            "ID": f"Segment_{label.value}",
            "Name": label.name,
            "NameAutoGenerated": "1" if generated else "0",
            "Color": " ".join(f"{c / 255:.6g}" for c in label.color),
            "ColorAutoGenerated": "1" if generated else "0",
            "LabelValue": str(label.value),
            "Layer": "0",
            "Extent": extent,
        }
        if tags:
            fields["Tags"] = tags
        metadata.update({f"Segment{index}_{key}": value for key, value in fields.items()})
    return metadata
