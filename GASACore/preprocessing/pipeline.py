"""``preprocess``: input image -> network input, exactly as nnU-Net v2's DefaultPreprocessor."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from GASACore.preprocessing.config import NormalizationScheme, PreprocessingConfig
from GASACore.preprocessing.cropping import crop_to_bbox, nonzero_bbox, nonzero_mask
from GASACore.preprocessing.normalization import normalize_channel
from GASACore.preprocessing.properties import PreprocessedProperties
from GASACore.preprocessing.resampling import compute_new_shape, resample_image

__all__ = ["preprocess"]

logger = logging.getLogger(__name__)


def _check_input(image: np.ndarray, spacing_zyx: Sequence[float], config: PreprocessingConfig) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[0] != config.num_channels or min(image.shape[1:]) < 1:
        raise ValueError(
            f"image must be (C, z, y, x) with C = {config.num_channels} channel(s) and non-empty axes, "
            f"got shape {image.shape}"
        )
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == np.bool_) or np.iscomplexobj(image):
        raise ValueError(f"image must hold real numbers, got dtype {image.dtype}")
    if len(spacing_zyx) != 3 or any(not float(s) > 0 or not np.isfinite(float(s)) for s in spacing_zyx):
        raise ValueError(f"spacing_zyx must be 3 positive finite values in mm (z, y, x), got {tuple(spacing_zyx)!r}")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError("image must be finite, got NaN or infinite values")
    return image


def preprocess(
    image: np.ndarray, spacing_zyx: Sequence[float], config: PreprocessingConfig, *, device: Any = None
) -> tuple[np.ndarray, PreprocessedProperties]:
    """Turn an image into the network input: transpose, crop to non-zero, normalise, resample.

    The order and arithmetic are nnU-Net v2's ``DefaultPreprocessor.run_case_npy`` (without a
    label map): cast to float32, transpose with ``transpose_forward``, crop to the bounding box of
    voxels non-zero in any channel, normalise each channel (before resampling, so masks still fit),
    resample to ``config.spacing`` with ``config.data`` orders and the anisotropic rule.

    Args:
        image: ``(C, z, y, x)`` array as SimpleITK gives it (a ``(z, y, x)`` array is taken as
            one channel); any real dtype (HU as int16 / int32 / float for CT).
        spacing_zyx: voxel spacing in mm in the same ``(z, y, x)`` order (SimpleITK's
            ``GetSpacing()`` reversed).
        config: the model's pre-processing configuration.
        device: where to resample: ``None`` / CPU (scipy), or a CUDA device (the same arithmetic on the GPU,
            falling back to the CPU when it runs out of memory; see ``resample_image``).

    Returns:
        ``(data, properties)``: ``data`` is the float32 network input ``(C, X, Y, Z)`` (C-contiguous),
        ``properties`` records what is needed to map a prediction back (``restore_segmentation``).

    Raises:
        ValueError: wrong number of channels or dimensions, non-finite values, bad spacing.
    """
    image = _check_input(image, spacing_zyx, config)
    forward = config.transpose_forward
    spacing_t = tuple(float(spacing_zyx[a]) for a in forward)
    data = image.transpose((0, *(a + 1 for a in forward)))
    shape_before = tuple(int(s) for s in data.shape[1:])
    bbox = nonzero_bbox(data)
    data = np.array(crop_to_bbox(data, bbox), dtype=np.float32, order="C")
    shape_cropped = tuple(int(s) for s in data.shape[1:])
    target = tuple(config.spacing) if len(config.spacing) == 3 else (spacing_t[0], *config.spacing)
    new_shape = compute_new_shape(shape_cropped, spacing_t, target)
    _normalize(data, config)
    orders = config.data
    data = resample_image(
        data,
        new_shape,
        spacing_t,
        target,
        order=orders.order,
        order_z=orders.order_z,
        force_separate_z=orders.force_separate_z,
        anisotropy_threshold=config.anisotropy_threshold,
        device=device,
    )
    logger.debug("preprocess: %s -> crop %s -> %s at %s mm", shape_before, shape_cropped, new_shape, target)
    properties = PreprocessedProperties(
        original_shape=tuple(image.shape[1:]),  # type: ignore[arg-type]
        original_spacing=tuple(float(s) for s in spacing_zyx),  # type: ignore[arg-type]
        transpose_forward=forward,
        transpose_backward=config.transpose_backward,
        spacing_transposed=spacing_t,  # type: ignore[arg-type]
        shape_before_cropping=shape_before,  # type: ignore[arg-type]
        bbox=bbox,  # type: ignore[arg-type]
        shape_after_cropping=shape_cropped,  # type: ignore[arg-type]
        target_spacing=target,  # type: ignore[arg-type]
        shape_after_resampling=new_shape,  # type: ignore[arg-type]
    )
    return np.ascontiguousarray(data), properties


def _normalize(data: np.ndarray, config: PreprocessingConfig) -> None:
    """Normalise every channel of the cropped float32 ``(C, X, Y, Z)`` array in place."""
    needs_mask = any(
        use and scheme is NormalizationScheme.ZSCORE
        for use, scheme in zip(config.use_mask_for_norm, config.normalization_schemes, strict=True)
    )
    mask = nonzero_mask(data) if needs_mask else None  # from the raw values, before any channel changes
    for c, scheme in enumerate(config.normalization_schemes):
        use_mask = config.use_mask_for_norm[c] and scheme is NormalizationScheme.ZSCORE
        data[c] = normalize_channel(
            data[c],
            scheme,
            config.intensity_properties[c],
            mask=mask if use_mask else None,
            use_mask_for_norm=use_mask,
        )
