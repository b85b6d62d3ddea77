"""Pre-processing as nnU-Net v2 does it, and the way back.

``preprocess`` turns a ``(C, z, y, x)`` image into the network input ``(C, X, Y, Z)`` (transpose,
crop to non-zero, normalisation, resampling to the target spacing); ``restore_segmentation``
maps the network's ``(K, X, Y, Z)`` logits back to a ``(z, y, x)`` label map on the input grid.
``PreprocessingConfig`` holds a model's settings (``from_nnunet`` reads an nnU-Net v2 plan).
Everything but the way back (``restore_segmentation``, ``resample_logits_to_labels``: torch) imports without
torch; those two are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from GASACore.preprocessing.config import (
    SCHEMA_VERSION,
    IntensityProperties,
    NormalizationScheme,
    PreprocessingConfig,
    ResamplingOrders,
)
from GASACore.preprocessing.cropping import BBox, crop_to_bbox, nonzero_bbox, nonzero_mask, uncrop
from GASACore.preprocessing.normalization import normalize_channel
from GASACore.preprocessing.pipeline import preprocess
from GASACore.preprocessing.properties import PreprocessedProperties
from GASACore.preprocessing.resampling import compute_new_shape, resample_image, separate_axis, source_coordinates

__all__ = [
    "SCHEMA_VERSION",
    "BBox",
    "IntensityProperties",
    "NormalizationScheme",
    "PreprocessedProperties",
    "PreprocessingConfig",
    "ResamplingOrders",
    "compute_new_shape",
    "crop_to_bbox",
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

_LAZY = {"resample_logits_to_labels", "restore_segmentation"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("GASACore.preprocessing.restore"), name)
    raise AttributeError(f"module 'GASACore.preprocessing' has no attribute {name!r}")
