"""Overlap and voxel-boundary metrics on binary masks: Dice and the voxel variant of NSD (``nsd_voxel``).

Conventions (the same as MONAI's ``compute_dice(ignore_empty=True)`` and ``compute_surface_dice``):

* both masks empty -> ``NaN`` (the class is absent from the case; means skip it);
* exactly one mask empty -> ``0.0`` for Dice and for NSD.

``nsd_voxel`` counts *surface voxels*: a voxel of the mask whose face neighbourhood (6-connectivity in 3D)
reaches the background, with everything outside the array counting as background. For each surface voxel of
one mask the Euclidean distance (in mm, using the voxel spacing) to the nearest surface voxel of the other mask
is measured; the score is the number of distances ``<= tau`` in both directions divided by the number of surface
voxels of both masks. This is MONAI's ``compute_surface_dice(use_subvoxels=False)``. It is NOT the paper's NSD:
Nikolov et al. (2018), the official KiTS23 evaluation and DeepMind's code weight each boundary element by its
area, which :func:`train.evaluation.surface.normalized_surface_dice` implements and evaluation reports as "NSD";
the two differ most on coarse or anisotropic grids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["dice", "nsd_voxel", "surface_voxel_distances", "surface_voxels"]


def _check_pair(prediction: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(prediction, dtype=bool)
    ref = np.asarray(reference, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction and reference must have the same shape, got {pred.shape} and {ref.shape}")
    return pred, ref


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice coefficient ``2|P & R| / (|P| + |R|)`` of two binary masks of any dimension.

    Args:
        prediction: Binary mask (any array that converts to bool).
        reference: Binary mask of the same shape.

    Returns:
        Dice in [0, 1]; ``NaN`` if both masks are empty.

    Raises:
        ValueError: If the shapes differ.
    """
    pred, ref = _check_pair(prediction, reference)
    total = int(pred.sum()) + int(ref.sum())
    if total == 0:
        return float("nan")
    return 2.0 * int(np.logical_and(pred, ref).sum()) / total


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` that touch the background through a face (or lie on the array border).

    Args:
        mask: Binary mask, 2D or 3D.

    Returns:
        Boolean array of the same shape, True on the surface voxels.
    """
    mask = np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    interior = ndimage.binary_erosion(mask, structure=structure, border_value=0)
    return mask & ~interior


def _normalise_spacing(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim or any(not np.isfinite(s) or s <= 0 for s in values):
        raise ValueError(f"spacing must be {ndim} positive finite numbers (one per array axis), got {spacing!r}")
    return values


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """Smallest box (one slice per axis) holding every True voxel of a non-empty mask."""
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def surface_voxel_distances(from_surface: np.ndarray, to_surface: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distances (mm) from every True voxel of ``from_surface`` to the nearest True voxel of ``to_surface``.

    Args:
        from_surface: Boolean surface mask the distances start from.
        to_surface: Boolean surface mask of the same shape the distances go to.
        spacing: Voxel size in mm per array axis (for a SimpleITK array in (z, y, x) order this is the
            reversed ``GetSpacing()``).

    Returns:
        1D float array, one distance per True voxel of ``from_surface`` (in C order); all ``inf`` when
        ``to_surface`` is empty.
    """
    src, dst = _check_pair(from_surface, to_surface)
    sampling = _normalise_spacing(spacing, src.ndim)
    if not src.any():
        return np.zeros(0, dtype=np.float64)
    if not dst.any():
        return np.full(int(src.sum()), np.inf)
    # Work inside the bounding box of both surfaces: every target voxel lies inside it, so the exact
    # Euclidean distance transform on the crop equals the one on the whole array.
    box = _bounding_box(src | dst)
    distance_map = ndimage.distance_transform_edt(~dst[box], sampling=sampling)
    return np.asarray(distance_map[src[box]], dtype=np.float64)


def nsd_voxel(prediction: np.ndarray, reference: np.ndarray, spacing: Sequence[float], tolerance_mm: float) -> float:
    """Voxel-count surface Dice (MONAI's ``use_subvoxels=False``) of two binary masks at ``tolerance_mm``.

    Args:
        prediction: Binary mask, 2D or 3D.
        reference: Binary mask of the same shape.
        spacing: Voxel size in mm per array axis (reversed SimpleITK spacing for (z, y, x) arrays).
        tolerance_mm: Boundary distances up to and including this value (mm) count as correct.

    Returns:
        NSD in [0, 1]; ``NaN`` if both masks are empty, ``0.0`` if exactly one is.

    Raises:
        ValueError: On different shapes, bad spacing or a negative / non-finite tolerance.
    """
    pred, ref = _check_pair(prediction, reference)
    _normalise_spacing(spacing, pred.ndim)
    if not np.isfinite(tolerance_mm) or tolerance_mm < 0:
        raise ValueError(f"tolerance_mm must be a finite number >= 0, got {tolerance_mm!r}")
    has_pred, has_ref = bool(pred.any()), bool(ref.any())
    if not has_pred and not has_ref:
        return float("nan")
    if not has_pred or not has_ref:
        return 0.0
    # Outside the bounding box of both masks everything is background, as it is outside the array: cropping
    # changes neither the surface voxels nor their distances, only the run time.
    box = _bounding_box(pred | ref)
    pred_surface, ref_surface = surface_voxels(pred[box]), surface_voxels(ref[box])
    pred_to_ref = surface_voxel_distances(pred_surface, ref_surface, spacing)
    ref_to_pred = surface_voxel_distances(ref_surface, pred_surface, spacing)
    within = int((pred_to_ref <= tolerance_mm).sum()) + int((ref_to_pred <= tolerance_mm).sum())
    return within / (pred_to_ref.size + ref_to_pred.size)
