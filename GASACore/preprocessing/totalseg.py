"""TotalSegmentator's resampling and crop arithmetic, as pure helpers on ``(z, y, x)`` arrays.

TotalSegmentator (``totalsegmentator/resampling.py`` ``change_spacing`` and ``cropping.py``, v2.18) runs a
model on an image resampled to the model's spacing with ``scipy.ndimage.zoom`` (``mode="nearest"``, corner
aligned, spline ``order`` 1 by default since 2.16, the result truncated to int32), lets nnU-Net predict on
that grid without resampling again, and brings the labels back with ``zoom`` of order 0 to exactly the
shape it started from. Its crop pre-pass takes the bounding box of a mask plus a margin given in mm
(``int(margin / spacing)`` voxels per axis). These helpers reproduce that arithmetic; the pipeline
(:mod:`GASACore.pipeline`) puts them in front of and behind its nnU-Net stages.

``zoom`` interpolates separably; it runs here on the ``(x, y, z)`` view of the ``(z, y, x)`` array, the axis
order TotalSegmentator's nibabel arrays have, so that even the floating-point rounding is the same.

Examples:
    >>> zoom_factors((3.0, 3.0, 3.0), (1.5, 1.5, 1.5)), zoomed_shape((112, 101, 122), (2.0, 2.0, 2.0))
    ((2.0, 2.0, 2.0), (224, 202, 244))
    >>> zoomed_shape((112, 101, 122), (0.5, 0.5, 0.5))  # Python rounding: 50.5 -> 50, 60.5 -> 60 (half to even)
    (56, 50, 61)
    >>> import numpy as np
    >>> ramp = np.arange(3, dtype=np.int32)[:, None, None] * np.ones((1, 2, 2), dtype=np.int32) * 10
    >>> out, spacing = change_spacing(ramp, (2.0, 1.0, 1.0), (1.0, 1.0, 1.0), order=1)
    >>> out[:, 0, 0].tolist(), spacing  # 3 slices -> 6, corners aligned: 0, 4, 8, 12, 16, 20
    ([0, 4, 8, 12, 16, 20], (1.0, 1.0, 1.0))
    >>> restore_shape(np.array([[[1, 2]]], dtype=np.uint8), (1, 1, 4))[0, 0].tolist()
    [1, 1, 2, 2]
    >>> mask = np.zeros((10, 10, 10), dtype=bool); mask[4:6, 4:6, 4:6] = True
    >>> crop_box(mask, (2.0, 1.5, 1.0), margin_mm=3.0)  # 1, 2, 3 voxels of margin
    ((3, 7), (2, 8), (1, 9))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "change_spacing",
    "crop_box",
    "margin_voxels",
    "restore_shape",
    "zoom_factors",
    "zoomed_shape",
]

#: The dtype TotalSegmentator casts a resampled CT to before nnU-Net reads it (truncating toward zero).
INTENSITY_DTYPES = {"int32": np.int32, "float32": np.float32}


def zoom_factors(spacing: Sequence[float], new_spacing: Sequence[float]) -> tuple[float, ...]:
    """``spacing / new_spacing`` per axis (mm / mm): above 1 the image gets more voxels."""
    if len(spacing) != len(new_spacing) or any(not float(s) > 0 for s in (*spacing, *new_spacing)):
        raise ValueError(
            f"spacings must be positive and of equal length, got {tuple(spacing)} and {tuple(new_spacing)}"
        )
    return tuple(float(s) / float(n) for s, n in zip(spacing, new_spacing, strict=True))


def zoomed_shape(shape: Sequence[int], zoom: Sequence[float]) -> tuple[int, ...]:
    """The shape ``scipy.ndimage.zoom`` gives: ``int(round(size * zoom))`` per axis (Python rounding)."""
    return tuple(round(int(s) * float(z)) for s, z in zip(shape, zoom, strict=True))


def _zoom(volume: np.ndarray, zoom: Sequence[float], order: int) -> np.ndarray:
    """``zoom`` of a ``(z, y, x)`` array computed on its ``(x, y, z)`` view, as TotalSegmentator runs it.

    The axis order changes nothing mathematically but the floating-point rounding of the separable passes:
    computed in nibabel's order, values that truncate to int32 truncate exactly as TotalSegmentator's do.
    """
    if not 0 <= int(order) <= 5:
        raise ValueError(f"order must be a spline order 0-5, got {order!r}")
    shape = zoomed_shape(volume.shape, zoom)
    if min(shape) < 1:
        raise ValueError(f"resampling {volume.shape} by {tuple(zoom)} leaves no voxels ({shape})")
    return ndimage.zoom(volume.T, tuple(reversed(zoom)), order=int(order), mode="nearest").T


def change_spacing(
    volume: np.ndarray,
    spacing_zyx: Sequence[float],
    new_spacing_zyx: Sequence[float],
    *,
    order: int,
    dtype: str | None = "int32",
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Resample an image to ``new_spacing_zyx`` as TotalSegmentator's ``change_spacing`` does.

    Args:
        volume: ``(z, y, x)`` image (HU), any real dtype; interpolated in float64, as nibabel's
            ``get_fdata`` hands it to TotalSegmentator.
        spacing_zyx: its spacing in mm.
        new_spacing_zyx: the model's spacing in mm.
        order: spline order (TotalSegmentator: 1; 3 before 2.16).
        dtype: ``"int32"`` (values truncated toward zero, as TotalSegmentator saves them), ``"float32"``, or
            ``None`` to keep float64.

    Returns:
        ``(resampled, new_spacing_zyx)``; the volume itself, unresampled and uncast, when the spacing is already
        exactly the model's (TotalSegmentator returns its input then).

    Raises:
        ValueError: non-positive spacings, an order outside 0-5, a result without voxels, an unknown dtype.
    """
    if dtype is not None and dtype not in INTENSITY_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(INTENSITY_DTYPES)} or None, got {dtype!r}")
    zoom = zoom_factors(spacing_zyx, new_spacing_zyx)
    target = (float(new_spacing_zyx[0]), float(new_spacing_zyx[1]), float(new_spacing_zyx[2]))
    if all(z == 1.0 for z in zoom):
        return volume, target
    resampled = _zoom(np.asarray(volume, dtype=np.float64), zoom, order)
    return (resampled.astype(INTENSITY_DTYPES[dtype]) if dtype else resampled), target


def restore_shape(labels: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A label map brought back to ``shape`` with order-0 ``zoom`` (TotalSegmentator's ``target_shape`` path).

    The factors are ``shape / labels.shape``, so the result has exactly ``shape``; the dtype is kept.
    """
    if tuple(labels.shape) == tuple(int(s) for s in shape):
        return labels
    zoom = [int(n) / int(o) for n, o in zip(shape, labels.shape, strict=True)]
    restored = _zoom(labels, zoom, 0)
    if restored.shape != tuple(int(s) for s in shape):
        raise RuntimeError(f"order-0 zoom gave shape {restored.shape}, expected {tuple(shape)}")
    return restored


def margin_voxels(spacing_zyx: Sequence[float], margin_mm: float) -> tuple[int, int, int]:
    """A margin in mm as whole voxels per axis, rounded down (``int(margin / spacing)``)."""
    if not float(margin_mm) >= 0:
        raise ValueError(f"margin_mm must be >= 0, got {margin_mm!r}")
    z, y, x = (int(float(margin_mm) / float(s)) for s in spacing_zyx)
    return (z, y, x)


def crop_box(mask: np.ndarray, spacing_zyx: Sequence[float], margin_mm: float) -> tuple[tuple[int, int], ...] | None:
    """Half-open ``((z0, z1), (y0, y1), (x0, x1))``: the mask's bounding box grown by ``margin_mm``, clipped.

    ``None`` when the mask is empty (TotalSegmentator then returns an empty segmentation).
    """
    if mask.ndim != 3:
        raise ValueError(f"mask must be (z, y, x), got shape {mask.shape}")
    margins = margin_voxels(spacing_zyx, margin_mm)
    box = []
    for axis, margin in enumerate(margins):
        others = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(np.any(mask, axis=others))
        if hits.size == 0:
            return None
        box.append((max(0, int(hits[0]) - margin), min(mask.shape[axis], int(hits[-1]) + 1 + margin)))
    return tuple(box)
