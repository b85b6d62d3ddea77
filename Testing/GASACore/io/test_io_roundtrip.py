"""Geometry round trips: read an image, write labels on its grid, read them back: same grid, same labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore.io import Geometry, read_image, write_label_map

_C, _S = math.cos(math.radians(20)), math.sin(math.radians(20))

# name -> (size x, y, z; spacing mm; origin LPS mm; direction row-major)
GEOMETRIES = {
    "RAS": ((9, 8, 7), (1.5, 1.5, 1.5), (120.5, 80.25, -300.0), (-1, 0, 0, 0, -1, 0, 0, 0, 1)),
    "LPS": ((9, 8, 7), (1.0, 1.25, 2.0), (-249.5, -437.5, -804.5), (1, 0, 0, 0, 1, 0, 0, 0, 1)),
    "LAS": ((9, 8, 7), (0.8, 0.8, 3.0), (-100.0, 150.0, 20.0), (1, 0, 0, 0, -1, 0, 0, 0, 1)),
    "oblique-20deg": (
        (9, 8, 7),
        (1.0, 1.0, 2.5),
        (12.5, -33.75, 101.0),
        (_C, -_S, 0, _S * _C, _C * _C, -_S, _S * _S, _S * _C, _C),
    ),
    "anisotropic": ((12, 10, 5), (0.7, 0.7, 5.0), (-180.0, -170.0, -420.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)),
    "tiny": ((2, 3, 2), (2.0, 2.0, 2.0), (1.0, 2.0, 3.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)),
}
OUTPUT_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".seg.nrrd")


def _ct_image(name: str, pixel_type: int = sitk.sitkInt16) -> sitk.Image:
    size, spacing, origin, direction = GEOMETRIES[name]
    values = np.arange(int(np.prod(size)), dtype=np.float64).reshape(size[::-1]) * 7 - 1000
    image = sitk.Cast(sitk.GetImageFromArray(values), pixel_type)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection([float(v) for v in direction])
    return image


def _labels(shape: tuple[int, int, int]) -> np.ndarray:
    return (np.arange(int(np.prod(shape))).reshape(shape) % 4).astype(np.int64)


@pytest.mark.parametrize("suffix", OUTPUT_SUFFIXES)
@pytest.mark.parametrize("name", GEOMETRIES)
def test_labels_come_back_on_the_input_grid(tmp_path: Path, name: str, suffix: str) -> None:
    source = _ct_image(name)
    sitk.WriteImage(source, str(tmp_path / "ct.nrrd"))
    image = read_image(tmp_path / "ct.nrrd")
    assert image.geometry.is_close(Geometry.from_sitk(source), atol=1e-9)

    labels = _labels(image.array.shape)
    written = write_label_map(labels, image.geometry, tmp_path / f"labels{suffix}")

    back = sitk.ReadImage(str(written))
    assert Geometry.from_sitk(back).is_close(image.geometry, atol=1e-4), name
    assert back.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ct.nrrd", f"labels{suffix}"])


@pytest.mark.parametrize("input_suffix", [".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"])
def test_every_input_format_gives_the_same_image(tmp_path: Path, input_suffix: str) -> None:
    source = _ct_image("oblique-20deg")
    sitk.WriteImage(source, str(tmp_path / f"ct{input_suffix}"))
    image = read_image(tmp_path / f"ct{input_suffix}")
    assert image.geometry.is_close(Geometry.from_sitk(source), atol=1e-4)
    assert image.array.dtype == np.float32
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(source))
    assert image.source == str(tmp_path / f"ct{input_suffix}")


@pytest.mark.parametrize(
    ("pixel_type", "name"),
    [
        (sitk.sitkUInt8, "8-bit unsigned integer"),
        (sitk.sitkInt16, "16-bit signed integer"),
        (sitk.sitkUInt16, "16-bit unsigned integer"),
        (sitk.sitkInt32, "32-bit signed integer"),
        (sitk.sitkFloat32, "32-bit float"),
        (sitk.sitkFloat64, "64-bit float"),
    ],
)
def test_any_pixel_type_becomes_float32(tmp_path: Path, pixel_type: int, name: str) -> None:
    source = sitk.Cast(sitk.Abs(_ct_image("anisotropic", sitk.sitkFloat64)) / 4.0, pixel_type)
    sitk.WriteImage(source, str(tmp_path / "ct.nii.gz"))
    image = read_image(tmp_path / "ct.nii.gz")
    assert image.pixel_type == name
    assert image.array.dtype == np.float32
    assert image.array.shape == (5, 10, 12)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(source).astype(np.float32))


def test_a_4d_image_with_one_volume_is_read_as_3d(tmp_path: Path) -> None:
    image_4d = sitk.GetImageFromArray(np.full((1, 4, 5, 6), 40, np.int16), isVector=False)
    assert image_4d.GetSize() == (6, 5, 4, 1)
    image_4d.SetSpacing((0.5, 0.6, 2.0, 1.0))
    image_4d.SetOrigin((1.0, 2.0, 3.0, 0.0))
    sitk.WriteImage(image_4d, str(tmp_path / "ct4d.mha"))
    image = read_image(tmp_path / "ct4d.mha")
    assert image.geometry.size == (6, 5, 4)
    assert image.geometry.spacing == pytest.approx((0.5, 0.6, 2.0))
    assert image.geometry.origin == pytest.approx((1.0, 2.0, 3.0))
    assert image.array.shape == (4, 5, 6)
    assert np.all(image.array == 40)


def test_many_labels_are_written_as_uint16(tmp_path: Path) -> None:
    geometry = Geometry((4, 3, 2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    labels = np.arange(24, dtype=np.int32).reshape(2, 3, 4) * 20  # up to 460
    for suffix in (".nii.gz", ".seg.nrrd"):
        back = sitk.ReadImage(str(write_label_map(labels, geometry, tmp_path / f"many{suffix}")))
        assert back.GetPixelID() == sitk.sitkUInt16
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), labels)


def test_real_example_ct_round_trip(tmp_path: Path, example_ct: Path) -> None:
    reference = sitk.ReadImage(str(example_ct))
    image = read_image(example_ct)
    assert image.pixel_type == "32-bit signed integer"
    assert image.geometry.size == (122, 101, 112)
    assert image.geometry.spacing == pytest.approx((3.0, 3.0, 3.0))
    assert image.geometry.orientation == "RAS"
    assert image.geometry.is_close(Geometry.from_sitk(reference), atol=0.0)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(reference))
    assert image.array.min() < -900 and image.array.max() > 1000  # Hounsfield units: air and bone

    labels = (image.array > 200).astype(np.uint8) + 2 * (image.array < -500)
    for suffix in (".nii.gz", ".seg.nrrd"):
        back = sitk.ReadImage(str(write_label_map(labels, image.geometry, tmp_path / f"ct_labels{suffix}")))
        assert Geometry.from_sitk(back).is_close(image.geometry)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), labels)
