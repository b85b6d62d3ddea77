"""find_cases: the cases of a batch from a file, a DICOM folder or a folder of cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore.errors import InputError
from GASACore.io import Case, find_cases, read_image


def _image(path: Path) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16)), str(path))
    return path


def _dicom_copy(slices: list[str], folder: Path) -> Path:
    folder.mkdir()
    for source in slices:
        shutil.copy(source, folder)
    return folder


def test_a_file_is_one_case(tmp_path: Path) -> None:
    path = _image(tmp_path / "patient_7.nii.gz")
    assert find_cases(path) == [Case("patient_7", path, False)]


def test_a_dicom_folder_is_one_case(dicom_folder: Path) -> None:
    assert find_cases(dicom_folder) == [Case("example_ct_dicom", dicom_folder, True)]


def test_a_folder_of_cases(tmp_path: Path, dicom_slices: list[str]) -> None:
    for name in ("b.nrrd", "a.nii.gz", "c.mha", "d.nii", ".hidden.nii.gz"):
        _image(tmp_path / name)
    _image(tmp_path / "old_result.seg.nrrd")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "no_dicom").mkdir()
    (tmp_path / "no_dicom" / "readme.txt").write_text("nothing here")
    _dicom_copy(dicom_slices[:3], tmp_path / "scan_2")
    _dicom_copy(dicom_slices[3:6], tmp_path / "scan_1")

    cases = find_cases(tmp_path)

    assert [(case.name, case.path.name, case.is_dicom) for case in cases] == [
        ("a", "a.nii.gz", False),
        ("b", "b.nrrd", False),
        ("c", "c.mha", False),
        ("d", "d.nii", False),
        ("scan_1", "scan_1", True),
        ("scan_2", "scan_2", True),
    ]
    assert read_image(cases[-1].path).geometry.size == (512, 512, 3)


def test_duplicate_names_get_a_number(tmp_path: Path) -> None:
    for name in ("liver.nii.gz", "liver.nrrd", "liver.mha"):
        _image(tmp_path / name)
    assert [case.name for case in find_cases(tmp_path)] == ["liver", "liver_2", "liver_3"]


def test_a_folder_of_two_series_is_one_case(two_series) -> None:
    assert find_cases(two_series.folder) == [Case(two_series.folder.name, two_series.folder, True)]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: folder / "missing", r"got .*missing, which does not exist"),
        (lambda folder: folder, r"expected image files .* or DICOM series in folder .*, found none"),
        (lambda folder: Path(shutil.copy(__file__, folder)), r"expected an image file .* or a folder, got .*\.py"),
    ],
    ids=["missing", "empty folder", "not an image"],
)
def test_nothing_to_segment_is_refused(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        find_cases(make(tmp_path))


def test_a_folder_with_only_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match=r"found none"):
        find_cases(tmp_path)


def test_a_dicom_export_tree_is_refused_naming_its_series_folders(tmp_path: Path, dicom_slices: list[str]) -> None:
    """patient / study / series: deeper than the one level a batch looks, so the message says where they are."""
    for series in ("series_1", "series_2"):
        target = tmp_path / "export" / "patient" / "study" / series
        target.mkdir(parents=True)
        for source in dicom_slices[:2]:
            shutil.copy(source, target)
    with pytest.raises(
        InputError,
        match=r"or its sub-folders, found none; DICOM series lie deeper, in \['patient/study/series_1', "
        r"'patient/study/series_2'\]: pass one of those folders",
    ):
        find_cases(tmp_path / "export")


def test_a_folder_of_other_files_says_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match=r"found none: it holds only notes.txt, sub/, which are not image files or"):
        find_cases(tmp_path)


def test_a_folder_of_dicom_non_images_names_them(tmp_path: Path) -> None:
    """A folder holding only an encapsulated PDF is no batch of nothing: the DICOM object is named."""
    from bad_inputs_dicom import part10_object

    part10_object(tmp_path / "report.dcm", "1.2.840.10008.5.1.4.1.1.104.1", "DOC")
    with pytest.raises(InputError, match=r"found only non-image objects: report.dcm \(Encapsulated document\)"):
        find_cases(tmp_path)


def test_a_series_split_between_two_case_folders_is_refused(tmp_path: Path, dicom_slices: list[str]) -> None:
    """Each half alone is an evenly spaced stack: segmented as two volumes without a word before. (The sample
    series has no SeriesInstanceUID, which ties nothing together: its slices are rewritten with one.)"""
    from bad_inputs_dicom import rewrite_slices

    rewrite_slices(dicom_slices[:3], tmp_path / "a", uid="1.2.826.0.1.3680043.8.498.7.81")
    rewrite_slices(dicom_slices[3:6], tmp_path / "b", uid="1.2.826.0.1.3680043.8.498.7.81", start=4)
    with pytest.raises(InputError, match=r"got series '.*' in both .*/a and .*/b \(split between them, or copied\)"):
        find_cases(tmp_path)
