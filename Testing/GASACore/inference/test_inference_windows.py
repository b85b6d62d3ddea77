"""Window starts, Gaussian importance, padding and mirror combinations: by hand and against nnU-Net v2."""

from __future__ import annotations

import math

import pytest
import torch
from acvl_utils.cropping_and_padding.padding import pad_nd_image
from nnunetv2.inference.sliding_window_prediction import compute_gaussian, compute_steps_for_sliding_window

from GASACore.inference import (
    gaussian_importance,
    mirror_combinations,
    pad_to_patch,
    window_slicers,
    window_starts,
    window_within,
)


@pytest.mark.parametrize(
    ("size", "patch", "step", "expected"),
    [
        (110, 64, 0.5, [0, 23, 46]),  # nnU-Net's own example
        (64, 64, 0.5, [0]),
        (65, 64, 0.5, [0, 1]),
        (128, 64, 0.5, [0, 32, 64]),
        (100, 32, 1.0, [0, 23, 45, 68]),  # 68 / 3 = 22.67: 22.67 -> 23, 45.33 -> 45
        (20, 16, 0.5, [0, 4]),
        (30, 16, 0.25, [0, 4, 7, 10, 14]),  # 14 / 4 = 3.5: 3.5 -> 4 and 10.5 -> 10 (half to even)
        (100, 30, 0.5, [0, 14, 28, 42, 56, 70]),
    ],
)
def test_window_starts_by_hand(size: int, patch: int, step: float, expected: list[int]) -> None:
    assert window_starts([size], [patch], step) == [expected]


def test_window_starts_round_half_to_even() -> None:
    # 3 steps over 5 voxels: 2.5 -> 2 (numpy and Python both round half to even)
    assert window_starts([37], [32], 0.1) == [[0, 2, 5]]
    assert window_starts([37], [32], 0.5) == [[0, 5]]
    assert window_starts([7], [2], 0.5) == [[0, 1, 2, 3, 4, 5]]
    assert window_starts([9], [4], 0.9) == [[0, 2, 5]]  # 2.5 -> 2


@pytest.mark.parametrize("step", [0.1, 0.25, 0.33, 0.5, 0.7, 1.0])
def test_window_starts_match_nnunet(step: float) -> None:
    for image, patch in [
        ((110, 213, 97), (64, 128, 32)),
        ((48, 192, 192), (48, 192, 192)),
        ((57, 301, 288), (48, 192, 160)),
    ]:
        assert window_starts(image, patch, step) == compute_steps_for_sliding_window(image, patch, step)


@pytest.mark.parametrize(
    ("image", "patch", "step"),
    [((10, 20, 20), (16, 16, 16), 0.5), ((32, 32, 32), (16, 16, 16), 0.0), ((32, 32, 32), (16, 16, 16), 1.5),
     ((32, 32), (16, 16, 16), 0.5), ((32, 32, 32), (0, 16, 16), 0.5)],
)  # fmt: skip
def test_window_starts_refuses(image: tuple[int, ...], patch: tuple[int, ...], step: float) -> None:
    with pytest.raises(ValueError, match="must"):
        window_starts(image, patch, step)


def test_window_slicers_order_and_cover() -> None:
    slicers = window_slicers((20, 40, 16), (16, 32, 16), 0.5)
    assert len(slicers) == 2 * 2 * 1
    assert slicers[0] == (slice(None), slice(0, 16), slice(0, 32), slice(0, 16))
    assert slicers[1] == (slice(None), slice(0, 16), slice(8, 40), slice(0, 16))  # Z innermost, then Y
    assert slicers[2] == (slice(None), slice(4, 20), slice(0, 32), slice(0, 16))
    covered = torch.zeros(20, 40, 16)
    for s in slicers:
        covered[s[1:]] += 1
    assert covered.min() == 1


def _unit_gaussian(offset: float, sigma: float) -> float:
    return math.exp(-0.5 * offset**2 / sigma**2)


def test_gaussian_by_hand() -> None:
    # 1D, 4 voxels: centre 2, sigma 0.5 -> 10 * exp(-2 d^2) for d = -2, -1, 0, 1
    g = gaussian_importance((4,), dtype=torch.float64)
    expected = [10 * _unit_gaussian(d, 0.5) for d in (-2, -1, 0, 1)]
    torch.testing.assert_close(g, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)
    # 2D (3, 4): the product of the 1D maps, centre value 10
    g2 = gaussian_importance((3, 4), dtype=torch.float64)
    ex = torch.tensor([_unit_gaussian(d, 3 / 8) for d in (-1, 0, 1)], dtype=torch.float64)
    torch.testing.assert_close(g2, ex[:, None] * torch.tensor(expected, dtype=torch.float64)[None], rtol=1e-12, atol=0)
    assert g2[1, 2] == 10 and g2.argmax() == 1 * 4 + 2


def test_gaussian_value_scaling_and_no_zeros() -> None:
    g = gaussian_importance((16, 32, 32), value_scaling_factor=1.0)
    assert g.max() == 1.0 and g.dtype == torch.float32 and tuple(g.shape) == (16, 32, 32)
    g16 = gaussian_importance((48, 192, 192), dtype=torch.float16)
    corner = 10 * _unit_gaussian(24, 6) * _unit_gaussian(96, 24) ** 2  # 3.8e-10 underflows in float16
    assert corner < 1e-8 and g16.min() > 0 and g16[0, 0, 0] == g16[g16 > 0].min()


@pytest.mark.parametrize("patch", [(16, 32, 32), (48, 192, 192), (5, 7, 9), (1, 8, 3)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_gaussian_matches_nnunet(patch: tuple[int, int, int], dtype: torch.dtype) -> None:
    compute_gaussian.cache_clear()
    ref = compute_gaussian(patch, 1.0 / 8, 10, dtype=dtype, device=torch.device("cpu"))
    assert torch.equal(gaussian_importance(patch, dtype=dtype), ref)


def test_gaussian_truncation_matches_nnunet() -> None:
    # sigma_scale 1/16: scipy truncates the kernel at 4 sigma, inside the patch; zeros become the minimum
    compute_gaussian.cache_clear()
    ref = compute_gaussian((16, 20, 24), 1.0 / 16, 10, dtype=torch.float32, device=torch.device("cpu"))
    ours = gaussian_importance((16, 20, 24), 1.0 / 16, dtype=torch.float32)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0)
    assert ours[0, 0, 0] == ours.min() == ours[0, 10, 12]


def test_gaussian_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="patch_size"):
        gaussian_importance((0, 4, 4))
    with pytest.raises(ValueError, match="sigma_scale"):
        gaussian_importance((4, 4, 4), sigma_scale=0)


@pytest.mark.parametrize("shape", [(2, 10, 20, 33), (1, 16, 32, 32), (1, 5, 40, 31), (3, 1, 1, 1)])
def test_pad_to_patch_matches_nnunet(shape: tuple[int, ...]) -> None:
    image = torch.randn(shape)
    padded, slicer = pad_to_patch(image, (16, 32, 32))
    ref, ref_slicer = pad_nd_image(image, (16, 32, 32), "constant", {"value": 0}, True, None)
    assert torch.equal(padded, ref)
    assert slicer[1:] == ref_slicer[1:]
    assert torch.equal(padded[slicer], image)


def test_pad_to_patch_by_hand() -> None:
    image = torch.ones(1, 13, 32, 40)
    padded, slicer = pad_to_patch(image, (16, 32, 32))
    assert padded.shape == (1, 16, 32, 40)  # 3 voxels: 1 before, 2 after; larger axes untouched
    assert padded[0, :, 0, 0].tolist() == [0] + [1] * 13 + [0, 0]
    assert slicer == (slice(None), slice(1, 14), slice(0, 32), slice(0, 40))
    same, _ = pad_to_patch(image[:, :, :, :32].contiguous(), (13, 32, 32))
    assert same.shape == (1, 13, 32, 32)
    with pytest.raises(ValueError, match=r"\(C, X, Y, Z\)"):
        pad_to_patch(torch.ones(13, 32, 40), (16, 32, 32))


def test_no_padding_returns_the_image() -> None:
    image = torch.randn(1, 16, 32, 32)
    padded, _ = pad_to_patch(image, (16, 32, 32))
    assert padded is image


def test_mirror_combinations() -> None:
    assert mirror_combinations(()) == []
    assert mirror_combinations((0,)) == [(2,)]
    assert mirror_combinations((0, 1, 2)) == [(2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)]
    assert len(mirror_combinations((2, 0))) == 3


def test_window_within_keeps_only_the_image_part_of_a_window() -> None:
    _, region = pad_to_patch(torch.zeros(1, 40, 70, 64), (64, 64, 64))  # X padded 40 -> 64: 12 before, 12 after
    assert region[1:] == (slice(12, 52), slice(0, 70), slice(0, 64))
    window = (slice(None), slice(0, 64), slice(6, 70), slice(0, 64))
    assert window_within(window, region) == (slice(None), slice(12, 52), slice(6, 70), slice(0, 64))
    assert window_within((slice(None), slice(0, 10), slice(0, 64), slice(0, 64)), region) is None
    assert window_within(window, (slice(None),) * 4) == window
