"""The paper's NSD (area-weighted surface Dice): DeepMind's package as the oracle, shapes with known surfaces.

Oracle: DeepMind's ``surface-distance`` (PyPI ``surface-distance``, the package the official KiTS23 evaluation
calls). Known surfaces: an axis-aligned box, whose marching-cubes surface (flat faces, bevelled edges, corner
triangles) has a closed-form area at any spacing, and spheres at anisotropic spacing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import surface_distance
from scipy import ndimage
from surface_distance import lookup_tables

from train.evaluation import normalized_surface_dice, surface_area, surface_distances, surface_element_areas
from train.evaluation.surface import neighbourhood_codes

# The oracle imports scipy.ndimage through its deprecated sub-namespaces.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:surface_distance.*")

SPACINGS_3D = [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8), (0.7, 1.9, 3.1)]


def deepmind_nsd(prediction: np.ndarray, reference: np.ndarray, spacing, tolerance: float) -> float:
    distances = surface_distance.compute_surface_distances(reference, prediction, spacing)
    return surface_distance.compute_surface_dice_at_tolerance(distances, tolerance)


def _oracle_code(code: int, ndim: int) -> int:
    """DeepMind's code of the 2x2(x2) block whose voxel ``itertools.product((0, 1), repeat=ndim)[b]`` is bit b."""
    kernel = lookup_tables.ENCODE_NEIGHBOURHOOD_3D_KERNEL if ndim == 3 else lookup_tables.ENCODE_NEIGHBOURHOOD_2D_KERNEL
    block = np.array([(code >> b) & 1 for b in range(2**ndim)]).reshape((2,) * ndim)
    return int((block * kernel).sum())


@pytest.mark.parametrize("spacing", SPACINGS_3D)
def test_element_areas_equal_deepmind_table_for_all_256_codes(spacing: tuple[float, float, float]) -> None:
    ours = surface_element_areas(spacing)
    theirs = lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
    assert ours.shape == (256,)
    np.testing.assert_allclose(ours, [theirs[_oracle_code(c, 3)] for c in range(256)], rtol=0, atol=1e-12)


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 2.3)])
def test_contour_lengths_equal_deepmind_table_in_2d(spacing: tuple[float, float]) -> None:
    ours = surface_element_areas(spacing)
    theirs = lookup_tables.create_table_neighbour_code_to_contour_length(spacing)
    np.testing.assert_allclose(ours, [theirs[_oracle_code(c, 2)] for c in range(16)], rtol=0, atol=1e-12)


def test_hand_computed_elements() -> None:
    sx, sy, sz = 2.5, 0.8, 1.2
    areas = surface_element_areas((sx, sy, sz))
    # One corner voxel: the triangle through the midpoints of its three edges.
    assert areas[1] == pytest.approx(math.sqrt((sy * sz) ** 2 + (sx * sz) ** 2 + (sx * sy) ** 2) / 8)
    # Code 15 = the four voxels with axis-0 offset 0: a flat square across the block, normal along axis 0.
    assert areas[15] == pytest.approx(sy * sz)
    assert areas[0] == areas[255] == 0.0
    assert np.allclose(areas, areas[255 - np.arange(256)])  # inside and outside swapped: the same surface
    codes = neighbourhood_codes(np.ones((1, 1, 1), dtype=bool))
    assert codes.shape == (2, 2, 2) and sorted(codes.ravel().tolist()) == [1 << b for b in range(8)]


def _box(shape: tuple[int, int, int], extent: tuple[int, int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(2, 2 + e) for e in extent)] = True
    return mask


@pytest.mark.parametrize("spacing", SPACINGS_3D)
def test_box_area_is_the_closed_form_of_its_marching_cubes_surface(spacing: tuple[float, float, float]) -> None:
    extent = (5, 7, 4)  # voxels
    s = np.array(spacing)
    length = (np.array(extent) - 1) * s  # between the outer voxel centres
    half = s / 2
    flat = 2 * (length[1] * length[2] + length[0] * length[2] + length[0] * length[1])
    bevels = 4 * sum(length[a] * math.hypot(*half[[b for b in range(3) if b != a]]) for a in range(3))
    corners = 8 * 0.5 * math.sqrt((half[0] * half[1]) ** 2 + (half[1] * half[2]) ** 2 + (half[0] * half[2]) ** 2)
    assert surface_area(_box((10, 12, 9), extent), spacing) == pytest.approx(flat + bevels + corners, rel=1e-12)


def _ball(radius_mm: float, spacing: tuple[float, float, float], field_mm: float) -> np.ndarray:
    """Voxels whose centre lies within ``radius_mm`` of the centre of a ``field_mm`` wide cube."""
    axes = [(np.arange(int(field_mm / sp)) - (int(field_mm / sp) - 1) / 2) * sp for sp in spacing]
    grid = np.meshgrid(*axes, indexing="ij")
    return sum(g**2 for g in grid) <= radius_mm**2


@pytest.mark.parametrize("spacing", SPACINGS_3D[1:])
def test_sphere_at_anisotropic_spacing(spacing: tuple[float, float, float]) -> None:
    radius = 24.0
    ball, larger = _ball(radius, spacing, 70.0), _ball(radius + 4.0, spacing, 70.0)
    area = surface_area(ball, spacing)
    oracle = surface_distance.compute_surface_distances(ball, ball, spacing)["surfel_areas_gt"].sum()
    assert area == pytest.approx(oracle, rel=1e-12)
    # Marching cubes on a binary voxel mask follows the staircase, so it overestimates a smooth sphere's
    # 4 pi r^2, the more so with thick slices (measured: +17 % at 2.5 x 0.8 x 0.8 mm); never below it.
    assert 1.0 < area / (4 * math.pi * radius**2) < 1.2
    assert normalized_surface_dice(ball, ball, spacing, 0.0) == 1.0
    for tolerance in (0.5, 2.0, 4.0, 8.0):
        assert normalized_surface_dice(larger, ball, spacing, tolerance) == pytest.approx(
            deepmind_nsd(larger, ball, spacing, tolerance), abs=1e-6
        )
    # Concentric spheres 4 mm apart: all distances are about 4 mm (up to half a voxel diagonal).
    assert normalized_surface_dice(larger, ball, spacing, 8.0) == 1.0
    assert normalized_surface_dice(larger, ball, spacing, 1.0) < 0.05


def _real_pair(shared_data) -> tuple[np.ndarray, np.ndarray]:
    """The TotalSegmentator slab label map and the same slab (slices 82-111) of the full scan's label map.

    Two runs of TotalSegmentator's models on the same CT: a realistic prediction / reference pair.
    """
    folder = shared_data / "totalsegmentator"
    slab = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_seg.nii.gz")))
    full = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_seg_fast_force_split.nii.gz")))
    return slab, full[82 : 82 + slab.shape[0]]


@pytest.mark.parametrize(("spacing", "tolerance"), [((3.0, 3.0, 3.0), 1.0), ((2.5, 0.8, 1.2), 2.0)])
def test_equals_deepmind_on_every_label_of_real_label_maps(shared_data, spacing, tolerance: float) -> None:
    prediction, reference = _real_pair(shared_data)
    labels = sorted(set(np.unique(prediction)) & set(np.unique(reference)) - {0})
    assert len(labels) == 40
    scores = []
    for label in labels:
        ours = normalized_surface_dice(prediction == label, reference == label, spacing, tolerance)
        theirs = deepmind_nsd(prediction == label, reference == label, spacing, tolerance)
        assert ours == pytest.approx(theirs, abs=1e-6), f"label {label}"
        scores.append(ours)
    assert 0.7 < min(scores) < 1.0  # two runs of the models: close, not identical


def test_equals_deepmind_on_a_real_label_map_against_its_eroded_copy(shared_data) -> None:
    _, reference = _real_pair(shared_data)
    liver = reference == 5  # TotalSegmentator id 5
    eroded = ndimage.binary_erosion(liver, iterations=2)
    spacing = (3.0, 3.0, 3.0)
    distances = surface_distances(eroded, liver, spacing)
    assert distances.pred_to_ref.max() == pytest.approx(6.0)  # the eroded surface is within two 3 mm voxels
    assert distances.ref_to_pred.max() > 6.0  # thin parts of the liver vanish
    for tolerance in (2.9, 3.0, 6.0):
        assert normalized_surface_dice(eroded, liver, spacing, tolerance) == pytest.approx(
            deepmind_nsd(eroded, liver, spacing, tolerance), abs=1e-6
        )
    assert 0.9 < normalized_surface_dice(eroded, liver, spacing, 6.0) < 1.0


@pytest.mark.parametrize("seed", range(3))
def test_equals_deepmind_on_random_2d_masks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred = ndimage.binary_dilation(rng.random((60, 50)) > 0.99, iterations=3)
    ref = ndimage.binary_dilation(rng.random((60, 50)) > 0.99, iterations=2) | (pred & (rng.random(pred.shape) > 0.3))
    for tolerance in (0.5, 1.5):
        ours = normalized_surface_dice(pred, ref, (0.8, 1.7), tolerance)
        assert ours == pytest.approx(deepmind_nsd(pred, ref, (0.8, 1.7), tolerance), abs=1e-6)


def test_bad_inputs_are_refused_with_what_was_given() -> None:
    box = _box((10, 12, 9), (3, 3, 3))
    with pytest.raises(ValueError, match=r"same shape, got \(10, 12, 9\) and \(9, 12, 9\)"):
        normalized_surface_dice(box, box[1:], (1, 1, 1), 1.0)
    with pytest.raises(ValueError, match="2D or 3D, got 4 dimensions"):
        normalized_surface_dice(box[None], box[None], (1, 1, 1, 1), 1.0)
    with pytest.raises(ValueError, match=r"spacing must be 3 positive finite numbers.*\(1, 1\)"):
        surface_distances(box, box, (1, 1))
    with pytest.raises(ValueError, match="tolerance_mm must be a finite number >= 0"):
        normalized_surface_dice(box, box, (1, 1, 1), math.inf)
    assert surface_area(np.zeros((3, 3, 3)), (1, 1, 1)) == 0.0
