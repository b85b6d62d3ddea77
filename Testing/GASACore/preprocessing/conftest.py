"""Fixtures of the pre-processing tests: nnU-Net v2 plans built in memory and the real example CT."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CT_PROPERTIES = {
    "mean": 60.5,
    "std": 140.25,
    "percentile_00_5": -970.0,
    "percentile_99_5": 1210.0,
    "median": 50.0,
    "min": -1024.0,
    "max": 3000.0,
}


def _kwargs(is_seg: bool, order: int) -> dict[str, Any]:
    return {"is_seg": is_seg, "order": order, "order_z": 0, "force_separate_z": None}


def make_plans(
    spacing: Sequence[float],
    *,
    transpose_forward: Sequence[int] = (0, 1, 2),
    schemes: Sequence[str] = ("CTNormalization",),
    use_mask_for_norm: Sequence[bool] | None = None,
    patch_size: Sequence[int] = (64, 64, 64),
) -> dict[str, Any]:
    """A minimal nnU-Net v2 plans dict with nnU-Net's default resampling functions and kwargs."""
    backward = [int(i) for i in np.argsort(transpose_forward)]
    return {
        "dataset_name": "Dataset999_Test",
        "plans_name": "nnUNetPlans",
        "transpose_forward": list(transpose_forward),
        "transpose_backward": backward,
        "foreground_intensity_properties_per_channel": {str(c): dict(CT_PROPERTIES) for c in range(len(schemes))},
        "configurations": {
            "3d_fullres": {
                "spacing": list(spacing),
                "patch_size": list(patch_size),
                "normalization_schemes": list(schemes),
                "use_mask_for_norm": list(use_mask_for_norm or [False] * len(schemes)),
                "resampling_fn_data": "resample_data_or_seg_to_shape",
                "resampling_fn_data_kwargs": _kwargs(False, 3),
                "resampling_fn_seg": "resample_data_or_seg_to_shape",
                "resampling_fn_seg_kwargs": _kwargs(True, 1),
                "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
                "resampling_fn_probabilities_kwargs": _kwargs(False, 1),
                "architecture": {"network_class_name": "unused", "arch_kwargs": {}, "_kw_requires_import": []},
            }
        },
    }


def make_dataset_json(n_channels: int = 1, n_classes: int = 5) -> dict[str, Any]:
    return {
        "channel_names": {str(c): "CT" for c in range(n_channels)},
        "labels": {"background": 0, **{f"class{i}": i for i in range(1, n_classes)}},
        "file_ending": ".nii.gz",
    }


@pytest.fixture(scope="session")
def plans_factory() -> Callable[..., dict[str, Any]]:
    return make_plans


@pytest.fixture(scope="session")
def dataset_factory() -> Callable[..., dict[str, Any]]:
    return make_dataset_json


@pytest.fixture(scope="session")
def padded_ct(example_ct: Path) -> tuple[np.ndarray, list[float]]:
    """A 64 x 80 x 84 block of the real example CT as ``(1, z, y, x)`` int32 HU, zero-padded unevenly
    so that cropping matters (a block keeps the comparisons with nnU-Net fast on 2 CPU cores)."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(example_ct))
    array = sitk.GetArrayFromImage(image)[None, 30:94, 10:90, 20:104]
    array = np.pad(array, ((0, 0), (3, 2), (0, 4), (5, 0)))
    return array, [float(s) for s in reversed(image.GetSpacing())]
