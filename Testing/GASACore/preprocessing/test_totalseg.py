"""TotalSegmentator's resampling, orientation and crop arithmetic against independent computations on the real CT.

The references are written here from TotalSegmentator's description (nibabel's ``as_closest_canonical``, then
``scipy.ndimage.zoom``'s corner-aligned grid evaluated with ``map_coordinates`` on nibabel's ``(x, y, z)``
array), not with the helpers under test.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

import GASACore.preprocessing.totalseg as totalseg
import GASACore.recipe as recipe
from GASACore.preprocessing.orientation import axis_alignment
from GASACore.preprocessing.totalseg import change_spacing, crop_box, restore_shape


def _reference_zoom(data_xyz: np.ndarray, zoom: tuple[float, ...], order: int) -> np.ndarray:
    """``zoom``'s output: ``round(n * zoom)`` samples at ``j * (n - 1) / (m - 1)``, edge values repeated."""
    shape = [round(n * z) for n, z in zip(data_xyz.shape, zoom, strict=True)]
    axes = [np.arange(m) * ((n - 1) / (m - 1)) for n, m in zip(data_xyz.shape, shape, strict=True)]
    grid = np.meshgrid(*axes, indexing="ij")
    return ndimage.map_coordinates(data_xyz.astype(np.float64), grid, order=order, mode="nearest")


def _reference_labels(shared_data: Path) -> np.ndarray:
    """TotalSegmentator's label map of the sample CT ``(z, y, x)``, 3 mm."""
    path = shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz"
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def canonical(example_ct: Path) -> nib.Nifti1Image:
    return nib.as_closest_canonical(nib.load(str(example_ct)))


@pytest.fixture(scope="module")
def ours(example_ct: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """The CT as GASACore reads it ``(z, y, x)``, turned to RAS by the pipeline's orientation stage."""
    image = sitk.ReadImage(str(example_ct))
    alignment = axis_alignment(image.GetDirection(), "RAS")
    spacing = tuple(reversed(image.GetSpacing()))
    return np.ascontiguousarray(alignment.apply(sitk.GetArrayFromImage(image))), alignment.spacing_zyx(spacing)


def test_the_module_examples_hold() -> None:
    for module in (totalseg, recipe):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0, module.__name__


def test_canonical_orientation_is_nibabels_closest_canonical_for_an_lps_permuted_input(
    tmp_path: Path, example_ct: Path
) -> None:
    image = sitk.ReadImage(str(example_ct))
    turned = sitk.Flip(sitk.PermuteAxes(image, [2, 0, 1]), [True, False, True])  # stored like no RAS file
    path = tmp_path / "turned.nii.gz"
    sitk.WriteImage(turned, str(path))
    reread = sitk.ReadImage(str(path))
    alignment = axis_alignment(reread.GetDirection(), "RAS")
    assert not alignment.identity
    aligned = alignment.apply(sitk.GetArrayFromImage(reread))
    reference = nib.as_closest_canonical(nib.load(str(path)))
    np.testing.assert_array_equal(aligned, np.asarray(reference.dataobj).transpose(2, 1, 0))
    spacing = alignment.spacing_zyx(tuple(reversed(reread.GetSpacing())))
    np.testing.assert_allclose(spacing, reference.header.get_zooms()[::-1], rtol=1e-6)
    np.testing.assert_array_equal(alignment.restore(aligned), sitk.GetArrayFromImage(reread))


@pytest.mark.parametrize("order", [1, 3])
def test_resampling_to_6_mm_matches_an_independent_zoom_of_the_real_ct(
    canonical: nib.Nifti1Image, ours: tuple[np.ndarray, tuple[float, ...]], order: int
) -> None:
    array, spacing = ours
    resampled, new_spacing = change_spacing(array, spacing, (6.0, 6.0, 6.0), order=order)
    as_float, _ = change_spacing(array, spacing, (6.0, 6.0, 6.0), order=order, dtype=None)
    zoom = tuple(z / 6.0 for z in canonical.header.get_zooms())
    data = canonical.get_fdata()
    reference = _reference_zoom(data, zoom, order)
    assert resampled.shape == (56, 50, 61) == reference.shape[::-1]  # 112 / 2, round(50.5) = 50, 122 / 2
    assert resampled.dtype == np.int32 and new_spacing == (6.0, 6.0, 6.0)
    np.testing.assert_allclose(as_float, reference.transpose(2, 1, 0), atol=1e-6)
    # Truncated to int32 as TotalSegmentator does (toward zero): bit for bit its own call on nibabel's array.
    totalsegmentator = ndimage.zoom(data, zoom, order=order, mode="nearest").astype(np.int32)
    np.testing.assert_array_equal(resampled, totalsegmentator.transpose(2, 1, 0))
    assert (np.trunc(as_float) == resampled).all()


def test_resampling_to_1_5_mm_matches_an_independent_zoom(ours: tuple[np.ndarray, tuple[float, ...]]) -> None:
    array, spacing = ours
    block = array[40:70, 30:55, 50:90]  # a block of the abdomen keeps the reference's coordinate grids small
    resampled, _ = change_spacing(block, spacing, (1.5, 1.5, 1.5), order=1, dtype=None)
    reference = _reference_zoom(block.transpose(2, 1, 0), (2.0, 2.0, 2.0), 1).transpose(2, 1, 0)
    assert resampled.shape == (60, 50, 80)
    np.testing.assert_allclose(resampled, reference, atol=1e-9)
    assert np.ptp(resampled) > 500, "real anatomy, not a flat block"


def test_an_image_already_at_the_model_spacing_is_not_resampled(ours: tuple[np.ndarray, tuple[float, ...]]) -> None:
    array, spacing = ours
    same, new_spacing = change_spacing(array, spacing, spacing, order=1)
    assert same is array and new_spacing == tuple(spacing)


def test_labels_come_back_to_the_input_shape_with_nearest_neighbour(shared_data: Path) -> None:
    seg = sitk.GetArrayFromImage(
        sitk.ReadImage(str(shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz"))
    )
    low, _ = change_spacing(seg, (3.0, 3.0, 3.0), (6.0, 6.0, 6.0), order=0, dtype=None)
    low = low.astype(np.uint8)
    back = restore_shape(low, seg.shape)
    assert back.shape == seg.shape and back.dtype == np.uint8
    grid = zip(low.shape, seg.shape, strict=True)
    indices = [np.floor(np.arange(m) * ((n - 1) / (m - 1)) + 0.5).astype(int) for n, m in grid]
    np.testing.assert_array_equal(back, low[np.ix_(*indices)])
    assert set(np.unique(back)) <= set(np.unique(seg)), "nearest neighbour invents no label"


def test_the_crop_box_of_the_real_kidneys_grows_by_whole_voxels(shared_data: Path) -> None:
    seg = sitk.GetArrayFromImage(
        sitk.ReadImage(str(shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz"))
    )
    kidneys = np.isin(seg, [2, 3])
    found = np.argwhere(kidneys)
    margin = np.array([int(20 / 3.0)] * 3)  # 6 voxels: 20 mm at 3 mm, rounded down
    low, high = np.maximum(found.min(0) - margin, 0), np.minimum(found.max(0) + 1 + margin, seg.shape)
    assert crop_box(kidneys, (3.0, 3.0, 3.0), 20.0) == tuple(zip(low.tolist(), high.tolist(), strict=True))
    assert crop_box(kidneys, (3.0, 3.0, 3.0), 1000.0) == tuple((0, s) for s in seg.shape), "clipped to the image"
    assert crop_box(np.zeros_like(kidneys), (3.0, 3.0, 3.0), 20.0) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: change_spacing(np.zeros((4, 4, 4)), (1, 1, 1), (0, 1, 1), order=1), "spacings must be positive"),
        (lambda: change_spacing(np.zeros((4, 4, 4)), (1, 1, 1), (2, 2, 2), order=7), "order must be a spline order"),
        (lambda: change_spacing(np.zeros((4, 4, 4)), (1, 1, 1), (99, 1, 1), order=1), "leaves no voxels"),
        (lambda: change_spacing(np.zeros((4, 4, 4)), (1, 1, 1), (2, 2, 2), order=1, dtype="int8"), "dtype must be"),
        (lambda: crop_box(np.zeros((4, 4, 4)), (1, 1, 1), -1.0), "margin_mm must be >= 0"),
    ],
)
def test_bad_arguments_say_what_was_expected(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
