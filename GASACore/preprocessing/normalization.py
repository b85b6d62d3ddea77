"""Intensity normalisation of one channel, numerically as nnU-Net v2 does it (float32 arithmetic)."""

from __future__ import annotations

import numpy as np

from GASACore.preprocessing.config import IntensityProperties, NormalizationScheme

__all__ = ["AIR_HU", "air_threshold", "normalize_channel"]

_EPS = 1e-8


def normalize_channel(
    image: np.ndarray,
    scheme: NormalizationScheme | str,
    properties: IntensityProperties | None = None,
    *,
    mask: np.ndarray | None = None,
    use_mask_for_norm: bool = False,
) -> np.ndarray:
    """Normalise one channel in float32.

    Args:
        image: one channel, any shape (e.g. ``(X, Y, Z)``), any real dtype; not modified.
        scheme: the nnU-Net scheme: CT = clip to the foreground 0.5 / 99.5 percentiles, then
            ``(v - mean) / max(std, 1e-8)`` with the training-set foreground statistics (HU);
            z-score = the image's own mean / std (inside ``mask`` when ``use_mask_for_norm``, leaving
            the outside unchanged); rescale to [0, 1] by min / max; RGB = divide by 255; none = cast.
        properties: foreground intensity statistics; required by ``CTNormalization``.
        mask: boolean array of ``image.shape``, True inside the (hole-filled) non-zero region.
        use_mask_for_norm: z-score only inside ``mask`` (ignored by the other schemes, as in nnU-Net).

    Returns:
        A new float32 array of ``image.shape``.

    Raises:
        ValueError: CT without properties, a mask of the wrong shape, RGB values outside [0, 255].
    """
    scheme = NormalizationScheme.parse(scheme)
    out = np.array(image, dtype=np.float32, copy=True)
    if scheme is NormalizationScheme.CT:
        if properties is None:
            raise ValueError("CTNormalization needs IntensityProperties (mean, std, percentiles), got None")
        np.clip(out, properties.percentile_00_5, properties.percentile_99_5, out=out)
        out -= properties.mean
        out /= max(properties.std, _EPS)
    elif scheme is NormalizationScheme.ZSCORE:
        _zscore(out, mask if use_mask_for_norm else None)
    elif scheme is NormalizationScheme.RESCALE_TO_01:
        out -= out.min()
        out /= max(out.max(), np.float32(_EPS))
    elif scheme is NormalizationScheme.RGB_TO_01:
        if out.size and (out.min() < 0 or out.max() > 255):
            raise ValueError(f"RGBTo01Normalization expects values in [0, 255], got [{out.min()}, {out.max()}]")
        out /= 255.0
    return out


def _zscore(out: np.ndarray, mask: np.ndarray | None) -> None:
    """In-place z-score of a float32 array, optionally only inside ``mask``."""
    if mask is None:
        mean, std = out.mean(), out.std()
        out -= mean
        out /= max(std, _EPS)
        return
    if mask.shape != out.shape:
        raise ValueError(f"mask must have the image's shape {out.shape}, got {mask.shape}")
    inside = out[mask]
    if inside.size == 0:
        return
    mean, std = inside.mean(), inside.std()
    out[mask] = (inside - mean) / max(std, _EPS)


AIR_HU = -900.0
"""CT voxels at or below this (HU) are air for ``--skip-air``."""


def air_threshold(scheme: NormalizationScheme | str, properties: IntensityProperties | None) -> float | None:
    """The normalised value at or below which a window of a CT-normalised model holds nothing but air.

    A window is "air" when every voxel is at or below :data:`AIR_HU` *as the network sees it*: CT
    normalisation clips below ``percentile_00_5`` first, so where that bound lies above -900 HU (a model
    trained on non-contrast scans may clip at -145 HU) everything below the bound is one value to the
    network, and the threshold is the normalised bound. A margin of 1e-4 absorbs float32 rounding.

    Example: mean 100 HU, std 50, clip [-1000, 1500]: -900 HU -> (-900 - 100) / 50 = -20.0, so the
    threshold is -19.9999; with clip [-145, 79] it is (-145 - 100) / 50 + 1e-4 = -4.8999.

    Args:
        scheme: the model's normalisation of channel 0.
        properties: its foreground intensity statistics (HU); needed for CT.

    Returns:
        The threshold, or ``None`` when the scheme is not CT normalisation (no HU to compare with).
    """
    if NormalizationScheme.parse(scheme) is not NormalizationScheme.CT:
        return None
    air = np.array([AIR_HU], dtype=np.float32)
    return float(normalize_channel(air, NormalizationScheme.CT, properties)[0]) + 1e-4
