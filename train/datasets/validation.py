"""Checks run on every case before a dataset is written: files, geometry and label values.

Each check returns the list of problems it found (empty when the case is fine) instead of raising, so that
a conversion can report every bad case at once through :class:`ConversionError`. Geometry is GASACore's
:class:`~GASACore.io.Geometry` (x, y, z order, LPS, mm).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from GASACore.io import Geometry

__all__ = [
    "CaseIssue",
    "ConversionError",
    "GeometryTolerance",
    "LabelCheck",
    "check_label_values",
    "geometry_mismatches",
    "read_geometry",
]


@dataclass(frozen=True)
class CaseIssue:
    """One problem of one case: its identifier and a sentence saying what was expected and what was found."""

    case_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.case_id}: {self.reason}"


class ConversionError(ValueError):
    """A data set cannot be converted; ``issues`` lists every bad case and why. Nothing was written."""

    def __init__(self, issues: Sequence[CaseIssue], *, source: str | Path = "") -> None:
        self.issues: tuple[CaseIssue, ...] = tuple(issues)
        cases = sorted({issue.case_id for issue in self.issues})
        where = f" in {str(source)!r}" if source else ""
        lines = [f"{len(cases)} bad case(s){where}; nothing was written:"]
        lines += [f"  - {issue}" for issue in self.issues]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class GeometryTolerance:
    """Largest accepted differences between an image's and its label map's geometry.

    Attributes:
        spacing_mm: Absolute spacing difference per axis (mm).
        origin_mm: Absolute origin difference per axis (mm).
        direction: Absolute difference per direction-cosine entry.
    """

    spacing_mm: float = 1e-3
    origin_mm: float = 1e-2
    direction: float = 1e-4


def read_geometry(path: Path) -> Geometry:
    """The geometry of a 3D single-channel image file, from its header only (no voxels are read).

    Raises:
        RuntimeError: SimpleITK cannot read the file.
        ValueError: the image is not 3D with one channel, or its header geometry is invalid (the message
            says what was found).
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    size, channels = tuple(reader.GetSize()), reader.GetNumberOfComponents()
    if len(size) != 3 or channels != 1:
        raise ValueError(f"image must be 3D with one channel, got size {size} with {channels} channel(s)")
    return Geometry(size=size, spacing=reader.GetSpacing(), origin=reader.GetOrigin(), direction=reader.GetDirection())


def _differs(a: Sequence[float], b: Sequence[float], tolerance: float) -> bool:
    return len(a) != len(b) or bool(np.any(np.abs(np.subtract(a, b)) > tolerance))


def geometry_mismatches(
    image: Geometry, label: Geometry, tolerance: GeometryTolerance = GeometryTolerance()
) -> list[str]:
    """Ways in which a label map's geometry differs from its image's (empty list when they agree)."""
    if image.size != label.size:
        return [f"label size must equal image size {image.size}, got {label.size}"]
    problems = []
    checks = (
        ("spacing", image.spacing, label.spacing, tolerance.spacing_mm),
        ("origin", image.origin, label.origin, tolerance.origin_mm),
        ("direction", image.direction, label.direction, tolerance.direction),
    )
    for name, expected, given, tol in checks:
        if _differs(expected, given, tol):
            rounded = tuple(round(v, 4) for v in given)
            problems.append(
                f"label {name} must equal image {name} {tuple(round(v, 4) for v in expected)}, got {rounded}"
            )
    return problems


@dataclass(frozen=True)
class LabelCheck:
    """Result of :func:`check_label_values`: the problems, and the lookup table to apply when there are none."""

    problems: tuple[str, ...]
    lookup: np.ndarray | None


def check_label_values(
    array: np.ndarray,
    allowed: Collection[int],
    remap: Mapping[int, int] | None = None,
    *,
    drop_unmapped: bool = True,
) -> LabelCheck:
    """Check a label array's values and build the uint8 lookup table ``output = lookup[input]``.

    Args:
        array: Label voxels, any integer type (or floats holding whole numbers).
        allowed: Label values the output may hold (background 0 is always allowed); all must be 0-255.
        remap: Optional source value -> output value mapping applied first.
        drop_unmapped: With ``remap``, source values missing from it become background (True) or are
            reported as problems (False).

    Returns:
        A :class:`LabelCheck`; ``lookup`` is None when there are problems.
    """
    allowed_set = {0, *(int(v) for v in allowed)}
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array)):
        return LabelCheck(("label values must be whole numbers, got non-integer floats",), None)
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low < 0:
        return LabelCheck((f"label values must be >= 0, got minimum {low}",), None)
    limit = max([high, *(remap or {}).keys()]) + 1
    counts = np.bincount(array.astype(np.int64, copy=False).ravel(), minlength=1)
    present = np.flatnonzero(counts).tolist()
    lookup = np.zeros(limit, dtype=np.int64)
    if remap is None:
        lookup[:] = np.arange(limit)
    else:
        for source, target in remap.items():
            lookup[int(source)] = int(target)
    problems = []
    if remap is not None and not drop_unmapped:
        unmapped = [v for v in present if v != 0 and v not in remap]
        if unmapped:
            problems.append(f"label values must all be in the remap table, got unmapped values {unmapped}")
    outside = sorted({int(lookup[v]) for v in present} - allowed_set)
    if outside:
        shown = "" if remap is None else " after remapping"
        problems.append(f"label values{shown} must be in {sorted(allowed_set)}, got {outside}")
    if problems:
        return LabelCheck(tuple(problems), None)
    return LabelCheck((), lookup.astype(np.uint8))
