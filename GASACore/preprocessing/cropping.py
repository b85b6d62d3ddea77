"""Crop to the non-zero region (nnU-Net's bounding box over channels) and put crops back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import binary_fill_holes

__all__ = ["BBox", "crop_to_bbox", "nonzero_bbox", "nonzero_mask", "uncrop"]

#: Half-open ``[start, stop)`` per spatial axis.
BBox = tuple[tuple[int, int], ...]


def nonzero_bbox(data: np.ndarray) -> BBox:
    """Bounding box of the voxels that are non-zero in any channel.

    Args:
        data: ``(C, X, Y, Z)`` (or ``(C, X, Y)``) array.

    Returns:
        Half-open ``((x0, x1), (y0, y1), (z0, z1))``; the whole array when every voxel is zero
        (nnU-Net's convention). Filling holes, as nnU-Net does, cannot change this box.
    """
    if data.ndim not in (3, 4):
        raise ValueError(f"data must be (C, X, Y, Z) or (C, X, Y), got shape {data.shape}")
    any_nonzero = np.any(data != 0, axis=0)
    box = []
    for axis in range(any_nonzero.ndim):
        others = tuple(a for a in range(any_nonzero.ndim) if a != axis)
        hits = np.flatnonzero(np.any(any_nonzero, axis=others))
        size = any_nonzero.shape[axis]
        box.append((int(hits[0]), int(hits[-1]) + 1) if hits.size else (0, size))
    return tuple(box)


def nonzero_mask(cropped: np.ndarray) -> np.ndarray:
    """nnU-Net's non-zero mask: non-zero in any channel, holes filled (6-connected background).

    Args:
        cropped: ``(C, X, Y, Z)`` array already cropped to ``nonzero_bbox`` (filling holes inside
            the box gives the same mask as filling the whole image and cropping).

    Returns:
        Boolean ``(X, Y, Z)`` mask.
    """
    return binary_fill_holes(np.any(cropped != 0, axis=0))


def _slices(bbox: BBox) -> tuple[slice, ...]:
    return tuple(slice(lo, hi) for lo, hi in bbox)


def crop_to_bbox(data: np.ndarray, bbox: BBox) -> np.ndarray:
    """View of ``data`` ``(C, *spatial)`` restricted to ``bbox`` on the spatial axes."""
    if len(bbox) != data.ndim - 1:
        raise ValueError(f"bbox must have one (start, stop) per spatial axis of {data.shape}, got {bbox!r}")
    return data[(slice(None), *_slices(bbox))]


def uncrop(crop: np.ndarray, bbox: BBox, shape: Sequence[int], *, fill: float = 0) -> np.ndarray:
    """Place ``crop`` (spatial shape = the box) into a new array of ``shape`` filled with ``fill``."""
    expected = tuple(hi - lo for lo, hi in bbox)
    if crop.shape[-len(bbox) :] != expected or len(shape) != len(bbox):
        raise ValueError(f"crop of spatial shape {expected} for bbox {bbox} in {tuple(shape)}, got {crop.shape}")
    if any(lo < 0 or hi > s for (lo, hi), s in zip(bbox, shape, strict=True)):
        raise ValueError(f"bbox {bbox} must lie inside the shape {tuple(shape)}")
    out = np.full((*crop.shape[: -len(bbox)], *shape), fill, dtype=crop.dtype)
    out[(..., *_slices(bbox))] = crop
    return out
