"""Cropping, transposes and the resampling rules, against nnU-Net v2's own helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nnunetv2.preprocessing.cropping.cropping import crop_to_nonzero
from nnunetv2.preprocessing.resampling import default_resampling as nn_resampling
from skimage.transform import resize

from GASACore.preprocessing import (
    IntensityProperties,
    PreprocessedProperties,
    PreprocessingConfig,
    compute_new_shape,
    crop_to_bbox,
    nonzero_bbox,
    nonzero_mask,
    preprocess,
    resample_image,
    resample_logits_to_labels,
    restore_segmentation,
    separate_axis,
    uncrop,
)

CT = IntensityProperties(0.0, 1.0, -1e6, 1e6)


def test_bbox_and_mask_match_nnunet() -> None:
    data = np.zeros((2, 10, 12, 14), dtype=np.float32)
    data[0, 2:7, 3:9, 4:6] = 1
    data[1, 5:8, 1:4, 10:12] = -3
    data[0, 4, 5, 4] = 0  # a hole: filled in the mask
    _, seg, bbox = crop_to_nonzero(data.copy())
    ours = nonzero_bbox(data)
    assert ours == ((2, 8), (1, 9), (4, 12)) and [list(b) for b in ours] == bbox
    np.testing.assert_array_equal(nonzero_mask(crop_to_bbox(data, ours)), seg[0] >= 0)


def test_empty_image_keeps_the_whole_box_and_uncrop_round_trips() -> None:
    assert nonzero_bbox(np.zeros((1, 3, 4, 5))) == ((0, 3), (0, 4), (0, 5))
    volume = np.arange(2 * 6 * 7 * 8).reshape(2, 6, 7, 8)
    box = ((1, 4), (2, 7), (0, 8))
    restored = uncrop(crop_to_bbox(volume, box), box, (6, 7, 8))
    np.testing.assert_array_equal(restored[:, 1:4, 2:7], volume[:, 1:4, 2:7])
    assert restored[:, 0].sum() == 0 and restored[:, 5].sum() == 0
    with pytest.raises(ValueError, match="must lie inside"):
        uncrop(np.zeros((3, 5, 8)), ((4, 7), (2, 7), (0, 8)), (6, 7, 8))


@pytest.mark.parametrize("forward", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (2, 1, 0)])
def test_transpose_and_crop_round_trip(forward: tuple[int, int, int]) -> None:
    """No resampling: one-hot logits of a label map come back as exactly that label map."""
    rng = np.random.default_rng(0)
    labels = np.zeros((9, 10, 11), dtype=np.uint8)
    labels[2:8, 1:9, 3:10] = rng.integers(1, 4, size=(6, 8, 7))
    backward = tuple(int(i) for i in np.argsort(forward))
    spacing_zyx = (3.0, 1.5, 1.0)
    config = PreprocessingConfig(
        spacing=tuple(spacing_zyx[a] for a in forward),
        patch_size=(8, 8, 8),
        transpose_forward=forward,
        transpose_backward=backward,
        intensity_properties=(CT,),
    )
    data, props = preprocess(labels.astype(np.int16), spacing_zyx, config)
    assert props.shape_before_cropping == tuple(labels.shape[a] for a in forward)
    assert data.shape[1:] == props.shape_after_cropping == props.shape_after_resampling
    logits = torch.from_numpy(np.eye(4, dtype=np.float32)[np.rint(data[0]).astype(int)]).permute(3, 0, 1, 2)
    restored = restore_segmentation(logits, props, config)
    assert restored.dtype == np.uint8 and restored.flags.c_contiguous
    np.testing.assert_array_equal(restored, labels)
    assert PreprocessedProperties.from_json(props.to_json()) == props


def test_compute_new_shape_uses_nnunet_rounding() -> None:
    for shape, old, new in [((122, 101, 112), (3, 3, 3), (2.5, 2, 2)), ((5, 7, 9), (1, 1, 1), (2, 2, 2))]:
        assert compute_new_shape(shape, old, new) == tuple(nn_resampling.compute_new_shape(shape, old, new))


@pytest.mark.parametrize(
    ("current", "new", "force"),
    [
        ((3.0, 0.8, 0.8), (1.0, 1.0, 1.0), None),
        ((1.0, 1.0, 1.0), (5.0, 1.0, 1.0), None),
        ((0.8, 3.0, 0.8), (1.0, 1.0, 1.0), None),
        ((0.24, 1.25, 1.25), (1.0, 1.0, 1.0), None),
        ((2.0, 2.0, 2.0), (1.0, 1.0, 1.0), None),
        ((2.0, 1.0, 1.0), (1.0, 1.0, 1.0), True),
        ((4.0, 1.0, 1.0), (1.0, 1.0, 1.0), False),
    ],
)
def test_separate_axis_matches_nnunet(current, new, force) -> None:
    do_separate, axis = nn_resampling.determine_do_sep_z_and_axis(force, current, new)
    assert separate_axis(current, new, force_separate_z=force) == (axis if do_separate else None)


@pytest.mark.parametrize(
    ("new_shape", "current", "new"),
    [((9, 13, 8), (2.0, 2.0, 2.0), (1.0, 1.0, 1.0)), ((3, 17, 15), (1.0, 1.0, 1.0), (5.0, 1.0, 1.0))],
)
def test_resample_image_equals_nnunet(new_shape, current, new) -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(2, 7, 10, 12)).astype(np.float32)
    kwargs = {"order": 3, "order_z": 0, "force_separate_z": None}  # the kwargs nnU-Net plans write
    reference = nn_resampling.resample_data_or_seg_to_shape(data, new_shape, current, new, **kwargs)
    ours = resample_image(data, new_shape, current, new, order=3, order_z=0)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)


def test_torch_linear_resize_equals_skimage_order_1() -> None:
    """The restore path's interpolation (torch, slab by slab) = skimage order-1 resize, mode edge."""
    rng = np.random.default_rng(2)
    values = rng.normal(size=(3, 9, 14, 6)).astype(np.float32)
    shape = (20, 7, 13)
    reference = np.stack([resize(v.astype(float), shape, 1, mode="edge", anti_aliasing=False) for v in values])
    ours = np.zeros(shape, dtype=np.uint8)
    resample_logits_to_labels(torch.from_numpy(values), ours, (1, 1, 1), chunk_megabytes=0.001)  # 1 slice a slab
    np.testing.assert_array_equal(ours, reference.argmax(0))


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("shape", [(20, 7, 13), (4, 19, 3)])
def test_separate_axis_nearest_equals_nnunet(axis: int, shape: tuple[int, int, int]) -> None:
    """Linear in-plane + nearest along the separate axis, growing or shrinking, any axis."""
    rng = np.random.default_rng(axis)
    values = rng.normal(size=(4, 9, 14, 6)).astype(np.float32)
    orders = tuple(0 if a == axis else 1 for a in range(3))
    ours = np.zeros(shape, dtype=np.uint8)
    resample_logits_to_labels(torch.from_numpy(values), ours, orders, chunk_megabytes=0.002)
    reference = nn_resampling.resample_data_or_seg(values, shape, False, axis, 1, True, order_z=0)
    np.testing.assert_array_equal(ours, reference.argmax(0))


def test_invalid_inputs_raise_value_errors() -> None:
    config = PreprocessingConfig(spacing=(1, 1, 1), patch_size=(8, 8, 8), intensity_properties=(CT,))
    with pytest.raises(ValueError, match=r"image must be \(C, z, y, x\) with C = 1"):
        preprocess(np.zeros((2, 4, 4, 4)), (1, 1, 1), config)
    with pytest.raises(ValueError, match="finite"):
        preprocess(np.full((4, 4, 4), np.nan), (1, 1, 1), config)
    with pytest.raises(ValueError, match="spacing_zyx"):
        preprocess(np.ones((4, 4, 4)), (1, 0, 1), config)
    _, props = preprocess(np.ones((4, 4, 4)), (1, 1, 1), config)
    with pytest.raises(ValueError, match=r"\(X, Y, Z\) = \(4, 4, 4\)"):
        restore_segmentation(torch.zeros(3, 4, 4, 5), props, config)
