"""Checks that an input's grid is a plausible 3D CT grid that a :class:`~GASACore.io.Geometry` can represent.

Every reader (NIfTI, NRRD, MHA/MHD, DICOM) passes its header's numbers through these before reading voxels:
the number of axes, the spacing (positive, finite, between :data:`MIN_SPACING_MM` and :data:`MAX_SPACING_MM`),
the origin (finite, within :data:`MAX_ORIGIN_MM`) and the direction (orthonormal up to rounding: a shear is
refused, saying how large it is, since resampling a sheared grid as if it were orthogonal misplaces every voxel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from GASACore.errors import InputError, UnsupportedGeometryError
from GASACore.io.geometry import Geometry

__all__ = [
    "MAX_ORIGIN_MM",
    "MAX_SPACING_MM",
    "MIN_SPACING_MM",
    "SHEAR_TOLERANCE",
    "checked_geometry",
    "geometry_from_affine",
    "spatial_size",
]

#: Smallest voxel size accepted (mm): 1 micrometre.
MIN_SPACING_MM = 1e-3
#: Largest voxel size accepted (mm): one metre; larger values are damaged headers (and resampling bombs).
MAX_SPACING_MM = 1e3
#: Largest distance of the origin from the world's (0, 0, 0) accepted (mm): one kilometre.
MAX_ORIGIN_MM = 1e6
#: Largest |cosine| between two normalised direction columns taken as rounding (about 0.006 degrees).
SHEAR_TOLERANCE = 1e-4

_AXES = "xyz"


def spatial_size(source: Path | str, size: Sequence[int]) -> tuple[int, int, int]:
    """The (x, y, z) size of a header's ``size``, dropping trailing axes of size 1 (a 4D image of one volume).

    Examples:
        >>> spatial_size("ct.nii", (512, 512, 90, 1))
        (512, 512, 90)

    Raises:
        InputError: fewer than 3 axes (2D), more than 3 axes that are not all of size 1 (4D+: time points,
            channels), an axis of size 0, or a spatial axis of size 1 (a single slice).
    """
    size = tuple(int(v) for v in size)
    if len(size) < 3:
        raise InputError(f"expected a 3D volume, got a {len(size)}D image of size {size} (x, y, z, ...) from {source}")
    if 0 in size[:3] or any(v < 0 for v in size):
        raise InputError(
            f"expected a 3D volume with voxels along every axis, got size {size} (x, y, z, ...) from {source}"
        )
    if any(v != 1 for v in size[3:]):
        raise InputError(
            f"expected a 3D volume, got a {len(size)}D image of size {size} (x, y, z, ...) from {source}; "
            "only trailing axes of size 1 can be dropped (pass one time point or channel)"
        )
    spatial = size[:3]
    if 1 in spatial:
        raise InputError(
            f"expected a 3D volume with at least 2 voxels along each axis, got size {spatial} (x, y, z) from {source} "
            "(a single slice or 2D image cannot be segmented in 3D)"
        )
    return spatial  # type: ignore[return-value]


def _check_spacing(source: Path | str, spacing: Sequence[float], what: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in spacing)
    if len(values) != 3 or not all(math.isfinite(v) and MIN_SPACING_MM <= v <= MAX_SPACING_MM for v in values):
        raise UnsupportedGeometryError(
            f"expected a voxel spacing between {MIN_SPACING_MM:g} and {MAX_SPACING_MM:g} mm along each axis, got "
            f"{values} mm (x, y, z) from the {what} of {source}; the header's spacing is damaged"
        )
    return values  # type: ignore[return-value]


def _check_origin(source: Path | str, origin: Sequence[float], what: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in origin)
    if len(values) != 3 or not all(math.isfinite(v) and abs(v) <= MAX_ORIGIN_MM for v in values):
        raise UnsupportedGeometryError(
            f"expected an origin of finite values within {MAX_ORIGIN_MM:g} mm, got {values} mm (LPS) "
            f"from the {what} of {source}; the header's position is damaged"
        )
    return values  # type: ignore[return-value]


def _rows(matrix: np.ndarray) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{v:.6g}" for v in row) + "]" for row in matrix) + "]"


def _orthonormal(source: Path | str, direction: np.ndarray, what: str, shown: np.ndarray) -> tuple[float, ...]:
    """``direction`` (3x3, unit columns) made exactly orthonormal; refuses a shear beyond rounding."""
    worst, pair = 0.0, (0, 1)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        cosine = abs(float(direction[:, i] @ direction[:, j]))
        if cosine > worst:
            worst, pair = cosine, (i, j)
    if worst > SHEAR_TOLERANCE or abs(abs(float(np.linalg.det(direction))) - 1.0) > 10 * SHEAR_TOLERANCE:
        cosine = float(direction[:, pair[0]] @ direction[:, pair[1]])
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
        raise UnsupportedGeometryError(
            f"the {what} of {source} holds a shear of {abs(90.0 - angle):.3g} degrees: its {_AXES[pair[0]]} and "
            f"{_AXES[pair[1]]} voxel axes meet at {angle:.4g} degrees instead of 90 (matrix {_rows(shown)}); "
            "GASASegmenter needs an orthonormal direction: resample the image onto a grid with perpendicular axes "
            "first"
        )
    left, _, right = np.linalg.svd(direction)
    return tuple(float(v) for v in (left @ right).reshape(-1))  # the nearest rotation (or reflection)


def checked_geometry(
    source: Path | str,
    size: Sequence[int],
    spacing: Sequence[float],
    origin: Sequence[float],
    direction: Sequence[float],
    *,
    what: str = "header",
) -> Geometry:
    """A :class:`Geometry` from a header's spacing, origin and direction (row-major, LPS), after checking them.

    Args:
        source: the file or folder, for messages.
        size: voxels along x, y, z (already checked by :func:`spatial_size`).
        spacing: voxel size (mm) along x, y, z.
        origin: LPS position (mm) of voxel (0, 0, 0).
        direction: 9 values, row-major; column j is the LPS direction of index axis j.
        what: the part of the header these come from, for messages (``"sform"``, ``"header"``...).

    Returns:
        The geometry, its direction made exactly orthonormal (a change within :data:`SHEAR_TOLERANCE`).

    Raises:
        UnsupportedGeometryError: implausible spacing or origin, a non-finite or sheared direction.
    """
    spacing = _check_spacing(source, spacing, what)
    origin = _check_origin(source, origin, what)
    matrix = np.asarray([float(v) for v in direction], dtype=np.float64)
    if matrix.shape != (9,) or not np.isfinite(matrix).all():
        raise UnsupportedGeometryError(
            f"expected a direction of 9 finite numbers, got {tuple(matrix.tolist())} from the {what} of {source}"
        )
    matrix = matrix.reshape(3, 3)
    norms = np.linalg.norm(matrix, axis=0)
    if np.any(norms < 1e-6):
        raise UnsupportedGeometryError(
            f"expected a direction of three non-zero axes, got {_rows(matrix)} from the {what} of {source}"
        )
    unit = _orthonormal(source, matrix / norms, what, matrix)
    return Geometry(size=tuple(size), spacing=spacing, origin=origin, direction=unit)  # type: ignore[arg-type]


def geometry_from_affine(
    source: Path | str, size: Sequence[int], affine: np.ndarray, *, what: str, shown: np.ndarray | None = None
) -> Geometry:
    """A :class:`Geometry` from a 4x4 voxel-to-world affine in LPS (index order x, y, z), after checking it.

    The spacing is the length of each affine column, the direction the columns divided by it, the origin the
    last column.

    Examples:
        >>> affine = np.diag([-0.8, -0.8, 2.5, 1.0])  # RAS voxels seen in LPS
        >>> geometry_from_affine("ct.nii", (4, 4, 3), affine, what="sform").orientation
        'RAS'

    Args:
        source: the file, for messages.
        size: voxels along x, y, z.
        affine: 4x4 voxel index (x, y, z) -> LPS world (mm).
        what: the affine's name for messages (``"sform affine"``).
        shown: the matrix to print in a message (e.g. the file's own RAS affine), default ``affine``.

    Raises:
        UnsupportedGeometryError: non-finite values, an axis of zero or absurd length, or a shear.
    """
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise UnsupportedGeometryError(
            f"expected a voxel-to-world affine of finite numbers, got {_rows(affine[:3])} from the {what} of {source}"
        )
    matrix = affine[:3, :3]
    spacing = np.linalg.norm(matrix, axis=0)
    _check_spacing(source, spacing, what)
    unit = _orthonormal(source, matrix / spacing, what, (affine if shown is None else np.asarray(shown))[:3])
    origin = _check_origin(source, affine[:3, 3], what)
    return Geometry(size=tuple(size), spacing=tuple(spacing), origin=origin, direction=unit)  # type: ignore[arg-type]
