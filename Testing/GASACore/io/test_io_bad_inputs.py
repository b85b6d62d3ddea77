"""read_image refuses what cannot be segmented with an InputError that says what was expected and what came."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore.errors import InputError
from GASACore.io import read_image


def _write(image: sitk.Image, path: Path) -> Path:
    sitk.WriteImage(image, str(path))
    return path


def _volume(values: np.ndarray) -> sitk.Image:
    return sitk.GetImageFromArray(values, isVector=False)


def _missing(folder: Path) -> Path:
    return folder / "nowhere" / "ct.nii.gz"


def _empty_folder(folder: Path) -> Path:
    (folder / "empty").mkdir()
    return folder / "empty"


def _folder_without_dicom(folder: Path) -> Path:
    (folder / "notes").mkdir()
    (folder / "notes" / "readme.txt").write_text("not a DICOM file\n")
    return folder / "notes"


def _text_named_nifti(folder: Path) -> Path:
    (folder / "ct.nii.gz").write_text("this is text, not a NIfTI image\n")
    return folder / "ct.nii.gz"


def _png(folder: Path) -> Path:
    return _write(sitk.Image([8, 8], sitk.sitkUInt8), folder / "slice.png")


def _segmentation(folder: Path) -> Path:
    return _write(_volume(np.ones((3, 3, 3), np.uint8)), folder / "labels.seg.nrrd")


def _image_2d(folder: Path) -> Path:
    return _write(_volume(np.zeros((5, 4), np.int16)), folder / "ct2d.nii.gz")


def _single_slice(folder: Path) -> Path:
    return _write(_volume(np.zeros((1, 5, 4), np.int16)), folder / "slice.nii.gz")


def _image_4d(folder: Path) -> Path:
    return _write(_volume(np.zeros((2, 3, 5, 4), np.int16)), folder / "ct4d.nii.gz")


def _vector(folder: Path) -> Path:
    return _write(sitk.Image([4, 5, 3], sitk.sitkVectorFloat32, 3), folder / "rgb.nrrd")


def _complex(folder: Path) -> Path:
    return _write(sitk.Image([4, 5, 3], sitk.sitkComplexFloat32), folder / "complex.nii.gz")


def _nan(folder: Path) -> Path:
    values = np.zeros((3, 5, 4), np.float32)
    values[1, 2, 3] = np.nan
    return _write(_volume(values), folder / "nan.mha")  # ITK's NIfTI reader turns NaN into 0 by itself


def _inf(folder: Path) -> Path:
    values = np.zeros((3, 5, 4), np.float64)
    values[0, 0, 0] = -np.inf
    values[2, 4, 3] = np.inf
    return _write(_volume(values), folder / "inf.nrrd")


def _zero_size_axis(folder: Path) -> Path:
    header = "ObjectType = Image\nNDims = 3\nDimSize = 4 5 0\nElementType = MET_SHORT\nElementDataFile = LOCAL\n"
    (folder / "zero.mha").write_text(header)
    return folder / "zero.mha"


def _single_dicom_file(folder: Path, dicom_slices: list[str]) -> Path:
    return Path(shutil.copy(dicom_slices[0], folder / "slice.dcm"))


CASES: dict[str, tuple[Callable[..., Path], str]] = {
    "missing path": (_missing, r"got .*nowhere.*ct\.nii\.gz, which does not exist"),
    "empty folder": (_empty_folder, r"expected a DICOM series folder, got the empty folder .*empty"),
    "folder without DICOM": (_folder_without_dicom, r"expected a DICOM series in folder .*notes, found none"),
    "text file named .nii.gz": (_text_named_nifti, r"expected a NIfTI-1 or NIfTI-2 image in .*ct\.nii\.gz, got text"),
    "unsupported suffix": (_png, r"expected an image file \(\.nii\.gz, .*\), got .*slice\.png"),
    "segmentation as input": (_segmentation, r"expected an image to segment, got a 3D Slicer segmentation"),
    "2D image": (_image_2d, r"expected a 3D volume, got a 2D image of size \(4, 5\)"),
    "single slice": (_single_slice, r"at least 2 voxels along each axis, got size \(4, 5, 1\)"),
    "4D image": (_image_4d, r"expected a 3D volume, got a 4D image of size \(4, 5, 3, 2\)"),
    "vector pixels": (_vector, r"expected a scalar image .* got 3 components per voxel"),
    "complex pixels": (_complex, r"expected real-valued voxels, got complex"),
    "NaN voxel": (_nan, r"expected finite voxel values, got 1 NaN or infinite voxels of 60 .*\(3, 5, 4\)"),
    "infinite voxels": (_inf, r"got 2 NaN or infinite voxels"),
    "zero-size axis": (_zero_size_axis, r"voxels along every axis, got size \(4, 5, 0\)"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_clearly(tmp_path: Path, case: str) -> None:
    make, message = CASES[case]
    path = make(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(InputError, match=message) as error:
        read_image(path)
    assert isinstance(error.value, ValueError)
    assert str(path) in str(error.value)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_a_single_dicom_file_points_to_its_folder(tmp_path: Path, dicom_slices: list[str]) -> None:
    path = _single_dicom_file(tmp_path, dicom_slices)
    with pytest.raises(InputError, match=r"expected a DICOM series folder, got the single DICOM file .*; pass its"):
        read_image(path)


def test_series_is_refused_for_a_file(tmp_path: Path) -> None:
    path = _write(_volume(np.zeros((3, 3, 3), np.int16)), tmp_path / "ct.nii.gz")
    with pytest.raises(InputError, match=r"series='1\.2\.3' selects a DICOM series in a folder, but .* is a file"):
        read_image(path, series="1.2.3")


def test_a_folder_without_a_series_points_to_what_it_holds(tmp_path: Path, dicom_slices: list[str]) -> None:
    (tmp_path / "scans" / "series_1").mkdir(parents=True)
    shutil.copy(dicom_slices[0], tmp_path / "scans" / "series_1")
    with pytest.raises(InputError, match=r"found none; DICOM series lie in the folders \['series_1'\] below it"):
        read_image(tmp_path / "scans")
    (tmp_path / "images").mkdir()
    _write(_volume(np.zeros((3, 3, 3), np.int16)), tmp_path / "images" / "ct.nii.gz")
    with pytest.raises(InputError, match=r"found none; it holds image files \['ct.nii.gz'\]: pass one of them"):
        read_image(tmp_path / "images")
