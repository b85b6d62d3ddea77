"""The axis-matrix resampler against nnU-Net v2's own ``resample_data_or_seg`` on real CT.

It is the CPU pre-processing (float64 products: equal to nnU-Net's float64 scipy splines rounded to float32,
asserted within 1e-6) and, in float32, the GPU's (run here on the CPU with the GPU's precision; the GPU runs
the same code in Testing/GASACore/inference/test_gpu_path.py). Tolerance for float32: 1e-4 absolute on
CT-normalised intensities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from nnunetv2.preprocessing.resampling.default_resampling import resample_data_or_seg
from scipy import ndimage

from GASACore.preprocessing import resample_image, separate_axis
from GASACore.preprocessing.resampling_torch import axis_matrix, resample_image_torch

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def ct_channel(example_ct: Path) -> np.ndarray:
    """A (1, X, Y, Z) crop of the real CT, CT-normalised roughly as a model would see it."""
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(example_ct)))[20:70, 10:80, 15:95].astype(np.float32)
    return ((np.clip(array, -1000, 1000) - 40.0) / 300.0)[None]


@pytest.mark.parametrize("order", [0, 1, 2, 3, 5])
def test_axis_matrix_is_scipys_zoom_along_one_axis(order: int) -> None:
    signal = np.random.default_rng(order).normal(size=(37, 3))
    expected = ndimage.zoom(signal, (53 / 37, 1.0), order=order, mode="nearest", grid_mode=True)
    np.testing.assert_allclose(axis_matrix(37, 53, order).T @ signal, expected, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "current", "target", "order", "order_z"),
    [
        ((40, 60, 100), (3.0, 3.0, 3.0), (3.75, 3.5, 2.4), 3, 0),  # joint cubic, shrinking and growing axes
        ((50, 70, 80), (3.0, 3.0, 3.0), (3.0, 3.0, 3.0), 3, 0),  # nothing to do
        ((20, 90, 60), (5.0, 0.8, 0.8), (2.5, 0.78, 1.2), 3, 0),  # separate axis 0: in-plane cubic, nearest z
        ((25, 56, 64), (5.0, 1.0, 1.0), (4.0, 1.25, 1.25), 3, 1),  # separate axis 0, linear z
        ((45, 50, 70), (1.0, 1.0, 1.0), (1.1, 1.4, 1.15), 1, 0),  # joint linear
    ],
)
def test_resampling_equals_nnunets_on_real_ct(
    ct_channel: np.ndarray, shape: tuple[int, int, int], current: tuple, target: tuple, order: int, order_z: int
) -> None:
    data = ct_channel[:, : shape[0], : shape[1], : shape[2]]
    new_shape = tuple(round(s * c / t) for s, c, t in zip(data.shape[1:], current, target, strict=True))
    axis = separate_axis(current, target)
    reference = resample_data_or_seg(
        data, new_shape, is_seg=False, axis=axis, order=order, do_separate_z=axis is not None, order_z=order_z
    )
    cpu = resample_image(data, new_shape, current, target, order=order, order_z=order_z)
    gpu_arithmetic = resample_image_torch(
        data, new_shape, axis, order=order, order_z=order_z, device="cpu", precision=torch.float32
    )
    for result, tolerance in ((cpu, 1e-6), (gpu_arithmetic, TOLERANCE)):
        assert result.shape == reference.shape and result.dtype == np.float32
        np.testing.assert_allclose(result, reference, rtol=0, atol=tolerance)
        assert result.min() >= data.min() - 1e-6 and result.max() <= data.max() + 1e-6


def test_cpu_resampling_of_the_whole_ct_is_nnunets_bit_for_bit(example_ct: Path) -> None:
    """The example CT from 3 mm to 3 x 2 x 2 mm (the bench model's plan): float64 products, float32 result."""
    data = sitk.GetArrayFromImage(sitk.ReadImage(str(example_ct))).astype(np.float32)[None]
    new_shape = (data.shape[1], round(data.shape[2] * 1.5), round(data.shape[3] * 1.5))
    reference = resample_data_or_seg(data, new_shape, is_seg=False, order=3).astype(np.float32)
    ours = resample_image(data, new_shape, (3.0, 3.0, 3.0), (3.0, 2.0, 2.0))
    assert float(np.abs(ours - reference).max()) <= 1e-3  # HU; measured 0.0 (bit-identical)
    assert float((ours != reference).mean()) < 1e-4


def test_axis_matrix_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="need positive sizes and a spline order 0-5"):
        axis_matrix(0, 4, 3)
