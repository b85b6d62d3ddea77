"""Dice / NSD: hand-computed shapes, empty-mask conventions, KiTS23 classes, MONAI and DeepMind agreement, real labels.

The area-weighted NSD itself (the paper's) is tested in ``test_evaluation_surface.py``; here ``nsd_voxel`` (the
voxel-count variant) against MONAI, and what ``evaluate_arrays`` reports as NSD against DeepMind's package.
"""

from __future__ import annotations

import math

import monai.metrics as monai_metrics
import numpy as np
import pytest
import SimpleITK as sitk
import surface_distance
import torch
from scipy import ndimage

from train.datasets import TOTALSEG_TO_BTCV
from train.evaluation import (
    KITS23_CLASSES,
    EvaluationClass,
    dice,
    evaluate_arrays,
    normalized_surface_dice,
    nsd_voxel,
    resolve_classes,
    surface_voxels,
)

# DeepMind's package (the oracle) imports scipy.ndimage through its deprecated sub-namespaces.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:surface_distance.*")


def _cube(shape: tuple[int, int, int], start: tuple[int, int, int], edge: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + edge) for s in start)] = True
    return mask


# Two 4x4x4 cubes, the second shifted by one voxel along axis 0.
A = _cube((10, 10, 10), (2, 2, 2), 4)
B = _cube((10, 10, 10), (3, 2, 2), 4)


def test_dice_of_cubes_offset_by_one_voxel() -> None:
    # overlap 3*4*4 = 48 voxels, 64 each: 2*48 / 128
    assert dice(A, B) == pytest.approx(0.75)
    assert dice(A, A) == 1.0


def test_surface_voxels_of_a_cube_leave_out_the_interior() -> None:
    assert surface_voxels(A).sum() == 64 - 8
    assert not surface_voxels(A)[3:5, 3:5, 3:5].any()


@pytest.mark.parametrize(
    ("spacing", "tolerance", "expected"),
    [
        # Spacing 2 mm along the shift. Per cube, of 56 surface voxels: 36 (sides and the 12 rim voxels of
        # the overlapped face) lie on the other cube's surface (0 mm), the 4 centre voxels of that face are
        # 1 mm (one in-plane voxel) from the other's side, and the 16 voxels of the far face are 2 mm away.
        ((2.0, 1.0, 1.0), 1.0, (36 + 4) * 2 / 112),
        ((2.0, 1.0, 1.0), 0.5, 36 * 2 / 112),
        ((2.0, 1.0, 1.0), 2.0, 1.0),
        # Spacing 0.5 mm along the shift: every distance is 0 or 0.5 mm.
        ((0.5, 1.0, 1.0), 0.5, 1.0),
        ((0.5, 1.0, 1.0), 0.4, 36 * 2 / 112),
    ],
)
def test_voxel_nsd_of_cubes_offset_by_one_voxel_with_anisotropic_spacing(
    spacing: tuple[float, float, float], tolerance: float, expected: float
) -> None:
    assert nsd_voxel(A, B, spacing, tolerance) == pytest.approx(expected)
    assert nsd_voxel(B, A, spacing, tolerance) == pytest.approx(expected)


def test_empty_mask_conventions() -> None:
    empty = np.zeros_like(A)
    assert math.isnan(dice(empty, empty))
    assert dice(A, empty) == 0.0 and dice(empty, A) == 0.0
    for nsd in (normalized_surface_dice, nsd_voxel):
        assert math.isnan(nsd(empty, empty, (1, 1, 1), 1.0))
        assert nsd(A, empty, (1, 1, 1), 1.0) == 0.0
        assert nsd(empty, A, (1, 1, 1), 1.0) == 0.0


def test_both_empty_classes_are_left_out_of_the_means() -> None:
    reference = A.astype(np.uint8)  # label 1 only
    classes = resolve_classes(labels={"one": 1, "two": 2})
    result = evaluate_arrays(reference, reference, (1, 1, 1), classes)
    assert result.dice[0] == 1.0 and math.isnan(result.dice[1]) and math.isnan(result.nsd[1])


def test_kits23_classes_absent_from_both_score_one_as_in_the_challenge() -> None:
    kidney_only = np.zeros((4, 8, 8), dtype=np.uint8)
    kidney_only[1:3, 2:6, 2:6] = 1
    result = evaluate_arrays(kidney_only, kidney_only, (1, 1, 1), KITS23_CLASSES)
    assert result.dice == (1.0, 1.0, 1.0) and result.nsd == (1.0, 1.0, 1.0)  # no masses, no tumour: 1 (KiTS23)
    missed = evaluate_arrays(np.zeros_like(kidney_only), kidney_only, (1, 1, 1), KITS23_CLASSES)
    assert missed.dice == (0.0, 1.0, 1.0) and missed.nsd == (0.0, 1.0, 1.0)


def test_bad_arguments_are_refused_with_what_was_given() -> None:
    with pytest.raises(ValueError, match=r"same shape.*\(10, 10, 10\)"):
        dice(A, A[1:])
    for nsd in (normalized_surface_dice, nsd_voxel):
        with pytest.raises(ValueError, match="spacing must be 3 positive"):
            nsd(A, B, (1.0, 0.0, 1.0), 1.0)
        with pytest.raises(ValueError, match="tolerance_mm must be"):
            nsd(A, B, (1, 1, 1), -1.0)
    with pytest.raises(ValueError, match=r"both_empty must be NaN or 1\.0"):
        EvaluationClass("x", (1,), 1.0, both_empty=0.5)
    with pytest.raises(ValueError, match="label_set must be one of"):
        resolve_classes(label_set="brats")
    with pytest.raises(ValueError, match=r"got unknown \['kidney'\]"):
        resolve_classes(label_set="kits23", tolerance_mm={"kidney": 2.0})


def test_tolerance_per_class_overrides_only_the_named_classes() -> None:
    classes = resolve_classes(label_set="kits23", tolerance_mm={"tumor": 3.0})
    assert [c.tolerance_mm for c in classes] == [1.0330772532390826, 1.1328796488598762, 3.0]


def test_kits23_hierarchical_classes_on_a_tiny_case() -> None:
    assert [(c.values, c.tolerance_mm) for c in KITS23_CLASSES] == [
        ((1, 2, 3), 1.0330772532390826),  # kits23/configuration/labels.py, HEC_SD_TOLERANCES_MM
        ((2, 3), 1.1328796488598762),
        ((2,), 1.1498198361434828),
    ]
    reference = np.zeros((1, 4, 8), dtype=np.uint8)
    reference[0, :, 0:4] = 1  # kidney
    reference[0, :, 4:6] = 2  # tumor
    reference[0, :, 6:8] = 3  # cyst
    prediction = reference.copy()
    prediction[0, :, 4:6] = 3  # tumor predicted as cyst: still a mass, not a tumor
    result = evaluate_arrays(prediction, reference, (1.0, 1.0, 1.0), resolve_classes(label_set="kits23"))
    assert result.dice == (1.0, 1.0, 0.0)
    assert result.nsd == (1.0, 1.0, 0.0)
    prediction[0, :, 6:8] = 0  # cyst missed: kidney+masses 24 of 32 voxels, masses 8 of 16
    result = evaluate_arrays(prediction, reference, (1.0, 1.0, 1.0), KITS23_CLASSES)
    assert result.dice[:2] == pytest.approx((2 * 24 / (24 + 32), 2 * 8 / (8 + 16)))


def _random_blobs(rng: np.random.Generator, shape: tuple[int, ...], count: int) -> np.ndarray:
    seeds = np.zeros(shape, dtype=bool)
    seeds[tuple(rng.integers(0, s, count) for s in shape)] = True
    return ndimage.binary_dilation(seeds, iterations=int(rng.integers(2, 5)))


def _one_hot(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))


_MONAI_WARNINGS = (
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:the (ground truth|prediction) of class:UserWarning"),
)


@_MONAI_WARNINGS[0]
@_MONAI_WARNINGS[1]
@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_monai_on_random_blobs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (24, 32, 28)
    pred = _random_blobs(rng, shape, 4)
    ref = ndimage.binary_dilation(_random_blobs(rng, shape, 3)) | (pred & (rng.random(shape) > 0.3))
    spacing = [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8), (3.0, 1.0, 0.5)][seed % 3]
    tolerance = [1.0, 2.0][seed % 2]
    theirs_nsd = monai_metrics.compute_surface_dice(_one_hot(pred), _one_hot(ref), [tolerance], spacing=list(spacing))
    theirs_dice = monai_metrics.compute_dice(_one_hot(pred), _one_hot(ref), include_background=False)
    assert nsd_voxel(pred, ref, spacing, tolerance) == pytest.approx(theirs_nsd.item(), abs=1e-6)
    assert dice(pred, ref) == pytest.approx(theirs_dice.item(), abs=1e-6)


def _btcv_reference(shared_data) -> tuple[np.ndarray, tuple[float, ...]]:
    image = sitk.ReadImage(str(shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz"))
    lookup = np.zeros(256, dtype=np.uint8)
    for source, target in TOTALSEG_TO_BTCV.items():
        lookup[source] = target
    return lookup[sitk.GetArrayFromImage(image)], tuple(reversed(image.GetSpacing()))


@_MONAI_WARNINGS[0]
@_MONAI_WARNINGS[1]
def test_real_label_map_against_itself_and_a_shifted_copy(shared_data) -> None:
    reference, spacing = _btcv_reference(shared_data)
    classes = resolve_classes(label_set="btcv")
    same = evaluate_arrays(reference, reference, spacing, classes)
    present = [i for i, c in enumerate(classes) if np.isin(reference, c.values).any()]
    assert len(present) == 12  # the esophagus is outside the field of view
    assert all(same.dice[i] == 1.0 and same.nsd[i] == 1.0 for i in present)
    assert all(math.isnan(same.dice[i]) for i in set(range(13)) - set(present))

    shifted = np.zeros_like(reference)
    shifted[:, 1:, :] = reference[:, :-1, :]  # one 3 mm voxel along y
    moved = evaluate_arrays(shifted, reference, spacing, classes)
    assert all(0.0 < moved.dice[i] < 1.0 for i in present)
    assert moved.dice[classes.index(next(c for c in classes if c.name == "liver"))] > 0.9

    # One class in two at a one-voxel tolerance (3 mm), the others at 1 mm. The reported NSD (area-weighted)
    # against DeepMind's surface-distance package; the voxel variant against MONAI's default.
    tolerances = [3.0 if i % 2 else 1.0 for i in range(13)]
    mixed = tuple(EvaluationClass(c.name, c.values, t) for c, t in zip(classes, tolerances, strict=True))
    ours = evaluate_arrays(shifted, reference, spacing, mixed)
    one_hot = [
        torch.nn.functional.one_hot(torch.from_numpy(a.astype(np.int64)), 14).permute(3, 0, 1, 2)[None].float()
        for a in (shifted, reference)
    ]
    monai_voxel = monai_metrics.compute_surface_dice(*one_hot, tolerances, spacing=list(spacing))[0]
    for i in present:
        pred_mask, ref_mask = shifted == i + 1, reference == i + 1
        deepmind = surface_distance.compute_surface_dice_at_tolerance(
            surface_distance.compute_surface_distances(ref_mask, pred_mask, spacing), tolerances[i]
        )
        assert ours.nsd[i] == pytest.approx(deepmind, abs=1e-6)
        voxel = nsd_voxel(pred_mask, ref_mask, spacing, tolerances[i])
        assert voxel == pytest.approx(monai_voxel[i].item(), abs=1e-6)
        if tolerances[i] == 3.0:  # a one-voxel shift is almost entirely within a one-voxel tolerance
            assert ours.nsd[i] > 0.9 > moved.nsd[i]
        else:
            assert abs(ours.nsd[i] - voxel) > 1e-3  # the two definitions differ at 3 mm voxels


def test_evaluation_class_refuses_background_and_negative_tolerance() -> None:
    with pytest.raises(ValueError, match="label values >= 1"):
        EvaluationClass("bg", (0,), 1.0)
    with pytest.raises(ValueError, match="tolerance >= 0"):
        EvaluationClass("x", (1,), -0.5)
