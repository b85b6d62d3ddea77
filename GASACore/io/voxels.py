"""Stored voxels to the float32 (z, y, x) array the engine uses: scaled as stored, every value checked finite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nibabel.volumeutils import apply_read_scaling

from GASACore.errors import InputError

__all__ = ["PIXEL_TYPE_NAMES", "pixel_type_name", "to_float32"]

#: SimpleITK's names of the stored pixel types (``LoadedImage.pixel_type``), by numpy dtype name.
PIXEL_TYPE_NAMES = {
    "uint8": "8-bit unsigned integer",
    "int8": "8-bit signed integer",
    "uint16": "16-bit unsigned integer",
    "int16": "16-bit signed integer",
    "uint32": "32-bit unsigned integer",
    "int32": "32-bit signed integer",
    "uint64": "64-bit unsigned integer",
    "int64": "64-bit signed integer",
    "float32": "32-bit float",
    "float64": "64-bit float",
}
#: Voxels converted per step: bounds the temporary float64 copy that scaling needs.
_SLAB_VOXELS = 1 << 22


def pixel_type_name(dtype: np.dtype) -> str:
    """SimpleITK's name of a numpy dtype (``"16-bit signed integer"``), or the dtype's own name."""
    return PIXEL_TYPE_NAMES.get(np.dtype(dtype).name, np.dtype(dtype).name)


def _first_bad(block: np.ndarray, offset: int) -> tuple[int, int, int]:
    z, y, x = (int(v) for v in np.argwhere(~np.isfinite(block))[0])
    return (x, y, z + offset)


def to_float32(
    values: np.ndarray,
    source: Path | str,
    *,
    slope: float | None = None,
    inter: float | None = None,
    reuse: bool = False,
) -> np.ndarray:
    """``values * slope + inter`` as a new float32 array, all values finite.

    Scaling is nibabel's (:func:`nibabel.volumeutils.apply_read_scaling`: integers scaled in float64), done
    slab by slab along z so that no full-size float64 copy is ever made.

    Args:
        values: stored voxels, shape (z, y, x), any real dtype or byte order.
        source: the file, for messages.
        slope: scale factor, None for none (NIfTI ``scl_slope`` as nibabel reads it).
        inter: offset, None for none.
        reuse: return ``values`` itself when it already is unscaled, native, C-contiguous float32 (only for
            arrays the caller owns, never a view into a SimpleITK image).

    Returns:
        C-contiguous float32 array of shape (z, y, x).

    Raises:
        InputError: a value is NaN or infinite (also when scaling overflows float32); the message gives the
            count of each and the (x, y, z) index of the first.
    """
    if values.dtype.kind not in "biuf":
        raise InputError(f"expected real-valued voxels, got {values.dtype} voxels in {source}")
    scaled = slope not in (None, 1.0) or inter not in (None, 0.0)
    native_float32 = values.dtype == np.float32 and values.dtype.isnative and values.flags.c_contiguous
    out = values if reuse and native_float32 and not scaled else np.empty(values.shape, np.float32)
    step = max(1, _SLAB_VOXELS // max(1, values.shape[1] * values.shape[2]))
    nan = inf = 0
    first: tuple[int, int, int] | None = None
    for start in range(0, values.shape[0], step):
        block = out[start : start + step]
        if out is not values:
            with np.errstate(over="ignore", invalid="ignore"):
                block[...] = apply_read_scaling(values[start : start + step], slope, inter)
        block_nan = int(np.count_nonzero(np.isnan(block)))
        block_inf = int(np.count_nonzero(np.isinf(block)))
        if (block_nan or block_inf) and first is None:
            first = _first_bad(block, start)
        nan, inf = nan + block_nan, inf + block_inf
    if nan or inf:
        scaling = f" after scaling by {slope or 1.0:g} and adding {inter or 0.0:g}" if scaled else ""
        raise InputError(
            f"expected finite voxel values, got {nan + inf} NaN or infinite voxels of {values.size}{scaling} in "
            f"{source} (shape (z, y, x) {values.shape}): {nan} NaN, {inf} infinite, the first at voxel index "
            f"(x, y, z) = {first}"
        )
    return out
