"""The PNG overlay: three readable planes in the radiological convention and a legend of the labels present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore.bitmap_font import text_mask
from GASACore.io import Geometry
from GASACore.labels import BTCV_LABELS
from GASACore.report import LEGEND_ROW_PX, MIN_PANEL_PX, legend_image, overlay_image, overlay_panels, write_overlay_png
from train.datasets import TOTALSEG_TO_BTCV

BY_NAME = {label.name: label for label in BTCV_LABELS}


@pytest.fixture(scope="module")
def example_case(shared_data: Path) -> tuple[np.ndarray, np.ndarray, Geometry]:
    """The real example CT and its TotalSegmentator labels mapped to BTCV's 13 organs."""
    image = sitk.ReadImage(str(shared_data / "totalsegmentator" / "example_ct.nii.gz"))
    total = sitk.GetArrayFromImage(
        sitk.ReadImage(str(shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz"))
    )
    lookup = np.zeros(int(total.max()) + 1, np.uint8)
    for source, target in TOTALSEG_TO_BTCV.items():
        if source < len(lookup):
            lookup[source] = target
    return sitk.GetArrayFromImage(image).astype(np.float32), lookup[total], Geometry.from_sitk(image)


def _swatch_rows(legend: np.ndarray) -> list[tuple[int, int, int]]:
    """Colour of each legend row's swatch (the pixel in the middle of the swatch column)."""
    rows = (legend.shape[0] - 4) // LEGEND_ROW_PX
    return [tuple(int(v) for v in legend[row * LEGEND_ROW_PX + 4 + 7, 8 + 7]) for row in range(1, rows)]


def test_three_large_planes_on_the_real_ct(example_case) -> None:
    ct, labels, geometry = example_case
    panels = overlay_panels(ct, labels, geometry, BTCV_LABELS)
    assert list(panels) == ["axial", "coronal", "sagittal"]
    for name, panel in panels.items():
        assert panel.dtype == np.uint8 and panel.ndim == 3 and max(panel.shape[:2]) >= MIN_PANEL_PX, name
    # physical aspect: the sample is isotropic 3 mm, 122 x 101 x 112 voxels (x, y, z)
    assert panels["axial"].shape[0] / panels["axial"].shape[1] == pytest.approx(101 / 122, abs=0.01)
    assert panels["coronal"].shape[0] / panels["coronal"].shape[1] == pytest.approx(112 / 122, abs=0.01)


def test_legend_lists_only_present_labels_with_their_colours(example_case) -> None:
    ct, labels, geometry = example_case
    present = [label for label in BTCV_LABELS if (labels == label.value).any()]
    assert 5 <= len(present) < len(BTCV_LABELS)  # the sample shows some organs, not all (no pancreas ...)
    legend = legend_image(labels, geometry, BTCV_LABELS)
    assert _swatch_rows(legend) == [label.color for label in present]
    picture = overlay_image(ct, labels, geometry, BTCV_LABELS)
    assert np.array_equal(picture[: legend.shape[0], -legend.shape[1] :], legend)
    text = legend[LEGEND_ROW_PX + 4 : 2 * LEGEND_ROW_PX, 8 + 14 + 8 :]
    assert (text == 255).all(axis=-1).sum() > 50  # the first row's name is drawn in white


def test_a_glyph_draws_ink() -> None:
    for char in "aZ0.(/ ":
        mask = text_mask(char, 3)
        assert mask.shape == (27, 15)
        assert mask.any() == (char != " ")
    assert not np.array_equal(text_mask("l", 1), text_mask("1", 1))


def _synthetic(direction: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, Geometry]:
    """A 40^3 2 mm volume with the liver painted in the patient's right half (world x < 0 in LPS)."""
    geometry = Geometry(size=(40, 40, 40), spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0), direction=direction)
    zyx = np.indices((40, 40, 40)).reshape(3, -1).astype(float)
    points = np.reshape(direction, (3, 3)) @ (zyx[::-1] * 2.0)  # world (LPS) x, y, z of every voxel, origin 0
    centre = points.mean(axis=1, keepdims=True)
    inside = (points[0] < centre[0] - 10) & (np.abs(points[1:] - centre[1:]) < 10).all(axis=0)
    labels = np.where(inside, BY_NAME["liver"].value, 0).astype(np.uint8).reshape(40, 40, 40)
    return np.full(labels.shape, 40.0, np.float32), labels, geometry


@pytest.mark.parametrize("direction", [(1, 0, 0, 0, 1, 0, 0, 0, 1), (-1, 0, 0, 0, -1, 0, 0, 0, 1)], ids=["LPS", "RAS"])
def test_patient_right_is_on_the_picture_left(direction) -> None:
    ct, labels, geometry = _synthetic(tuple(float(d) for d in direction))
    panels = overlay_panels(ct, labels, geometry, BTCV_LABELS)
    for name in ("axial", "coronal"):
        panel = panels[name]
        coloured = np.argwhere(panel[..., 0] != panel[..., 1])
        assert len(coloured) and coloured[:, 1].max() < panel.shape[1] // 2, name


def test_head_is_up_in_coronal_and_sagittal() -> None:
    geometry = Geometry(
        size=(40, 40, 40), spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)
    )
    labels = np.zeros((40, 40, 40), np.uint8)
    labels[30:36, 15:25, 15:25] = BY_NAME["liver"].value  # high z = superior in LPS
    panels = overlay_panels(np.zeros(labels.shape, np.float32), labels, geometry, BTCV_LABELS)
    for name in ("coronal", "sagittal"):
        rows = np.argwhere(panels[name][..., 0] != panels[name][..., 1])[:, 0]
        assert rows.max() < panels[name].shape[0] // 2, name


def test_thin_slab_still_gives_large_panels(example_case, tmp_path: Path) -> None:
    ct, labels, geometry = example_case
    z = int(np.argwhere(labels == BY_NAME["liver"].value)[:, 0].mean())
    slab = Geometry(
        size=(*geometry.size[:2], 20), spacing=geometry.spacing, origin=geometry.origin, direction=geometry.direction
    )
    path = write_overlay_png(ct[z - 10 : z + 10], labels[z - 10 : z + 10], slab, BTCV_LABELS, tmp_path / "slab.png")
    panels = overlay_panels(ct[z - 10 : z + 10], labels[z - 10 : z + 10], slab, BTCV_LABELS)
    assert all(max(panel.shape[:2]) >= MIN_PANEL_PX for panel in panels.values())
    assert panels["coronal"].shape[0] >= 60  # 60 mm of 366: a strip, not a line
    picture = sitk.ReadImage(str(path))
    assert picture.GetNumberOfComponentsPerPixel() == 3 and picture.GetSize()[0] >= 3 * MIN_PANEL_PX
