"""Pre-processing as nnU-Net v2 does it, and the way back.

``preprocess`` turns a ``(C, z, y, x)`` image into the network input ``(C, X, Y, Z)`` (transpose,
crop to non-zero, normalisation, resampling to the target spacing); ``restore_segmentation``
maps the network's ``(K, X, Y, Z)`` logits back to a ``(z, y, x)`` label map on the input grid.
``PreprocessingConfig`` holds a model's settings (``from_nnunet`` reads an nnU-Net v2 plan).

Names are imported on first use: the configuration (``GASACore.preprocessing.config``, standard library only)
loads without numpy's helpers, scipy or torch, so a model can be described cheaply; the way back
(``restore_segmentation``, ``resample_logits_to_labels``) needs torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers
    from GASACore.preprocessing.budget import RunEstimate, check_run_memory, estimate_run_bytes
    from GASACore.preprocessing.config import (
        SCHEMA_VERSION,
        IntensityProperties,
        NormalizationScheme,
        PreprocessingConfig,
        ResamplingOrders,
    )
    from GASACore.preprocessing.cropping import BBox, crop_to_bbox, nonzero_bbox, nonzero_mask, uncrop
    from GASACore.preprocessing.normalization import AIR_HU, air_threshold, normalize_channel
    from GASACore.preprocessing.pipeline import preprocess
    from GASACore.preprocessing.properties import PreprocessedProperties
    from GASACore.preprocessing.resampling import (
        compute_new_shape,
        resample_image,
        separate_axis,
        source_coordinates,
    )
    from GASACore.preprocessing.restore import resample_logits_to_labels, restore_segmentation

__all__ = [
    "AIR_HU",
    "SCHEMA_VERSION",
    "BBox",
    "IntensityProperties",
    "NormalizationScheme",
    "PreprocessedProperties",
    "PreprocessingConfig",
    "ResamplingOrders",
    "RunEstimate",
    "air_threshold",
    "check_run_memory",
    "compute_new_shape",
    "crop_to_bbox",
    "estimate_run_bytes",
    "nonzero_bbox",
    "nonzero_mask",
    "normalize_channel",
    "preprocess",
    "resample_image",
    "resample_logits_to_labels",
    "restore_segmentation",
    "separate_axis",
    "source_coordinates",
    "uncrop",
]

#: Public name -> defining module (imported on first access).
_EXPORTS = {
    **dict.fromkeys(
        ("SCHEMA_VERSION", "IntensityProperties", "NormalizationScheme", "PreprocessingConfig", "ResamplingOrders"),
        "config",
    ),
    **dict.fromkeys(("RunEstimate", "check_run_memory", "estimate_run_bytes"), "budget"),
    **dict.fromkeys(("BBox", "crop_to_bbox", "nonzero_bbox", "nonzero_mask", "uncrop"), "cropping"),
    **dict.fromkeys(("AIR_HU", "air_threshold", "normalize_channel"), "normalization"),
    "preprocess": "pipeline",
    "PreprocessedProperties": "properties",
    **dict.fromkeys(("compute_new_shape", "resample_image", "separate_axis", "source_coordinates"), "resampling"),
    **dict.fromkeys(("resample_logits_to_labels", "restore_segmentation"), "restore"),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'GASACore.preprocessing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"GASACore.preprocessing.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
