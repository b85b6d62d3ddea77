"""DICOM folders: what is skipped is named, what is kept is exactly the CT series."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from bad_inputs_dicom import RTSTRUCT_CLASS, copy_slices, part10_object
from odd_inputs import dicom_with_copies, dicom_with_localizer_in_series, dicom_with_seg_and_rtstruct

from GASACore.errors import UnsafePathError
from GASACore.io import find_cases, read_image
from GASACore.io.datafiles import confined
from GASACore.io.dicom import list_dicom_series
from GASACore.io.dicomtags import non_image_kind, read_file_meta


def _warnings(caplog: pytest.LogCaptureFixture) -> str:
    return " ".join(record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)


def test_non_image_objects_are_skipped_by_name(
    tmp_path: Path, dicom_slices: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    folder, geometry, _ = dicom_with_seg_and_rtstruct(tmp_path, dicom_slices)
    assert [len(series.files) for series in list_dicom_series(folder)] == [8]  # the SEG series is gone
    with caplog.at_level(logging.WARNING, logger="GASACore.io"):
        image = read_image(folder)
    assert image.geometry.is_close(geometry)
    warning = _warnings(caplog)
    for name in ("seg_001.dcm (Segmentation (SEG))", "rtstruct.dcm (RT Structure Set (RTSTRUCT))", "DICOMDIR"):
        assert name in warning
    assert find_cases(folder)[0].path == folder


def test_a_localizer_in_the_series_is_skipped(
    tmp_path: Path, dicom_slices: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    folder, geometry, _ = dicom_with_localizer_in_series(tmp_path, dicom_slices)
    assert [len(series.files) for series in list_dicom_series(folder)] == [7]  # GDCM counts it as a slice
    with caplog.at_level(logging.WARNING, logger="GASACore.io"):
        assert read_image(folder).geometry.is_close(geometry)
    assert "skipping 1 DICOM files that are not slices of the volume" in _warnings(caplog)
    assert "scout_001.dcm (localizer)" in _warnings(caplog)


def test_copies_of_a_slice_are_read_once(
    tmp_path: Path, dicom_slices: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    folder, geometry, _ = dicom_with_copies(tmp_path, dicom_slices)
    with caplog.at_level(logging.WARNING, logger="GASACore.io"):
        assert read_image(folder).geometry.size == geometry.size == (512, 512, 6)
    assert _warnings(caplog).count("(same position, same content): read once") == 2


def test_file_meta_names_the_object(tmp_path: Path, dicom_slices: list[str]) -> None:
    assert read_file_meta(Path(dicom_slices[0]))["0002|0002"] == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    assert non_image_kind(read_file_meta(part10_object(tmp_path / "rt.dcm", RTSTRUCT_CLASS, "RTSTRUCT"))["0002|0002"])
    assert read_file_meta(Path(__file__)) is None
    assert non_image_kind("1.2.840.10008.5.1.4.1.1.88.22") == "Structured Report (SR)"
    assert non_image_kind("1.2.840.10008.5.1.4.1.1.11.1") == "Presentation State (PR)"
    assert non_image_kind("1.2.840.10008.5.1.4.1.1.88.59") == "Key Object Selection (KO)"
    assert non_image_kind("1.2.840.10008.5.1.4.1.1.481.5") == "RT Plan (RTPLAN)"
    assert non_image_kind("1.2.840.10008.5.1.4.1.1.2.1") is None  # Enhanced CT is an image


def test_the_longest_image_series_is_chosen_even_next_to_objects(tmp_path: Path, dicom_slices: list[str]) -> None:
    copy_slices(dicom_slices[:3], tmp_path)
    for number in range(5):  # more non-image files than slices: they never make a series
        part10_object(tmp_path / f"sr_{number}.dcm", "1.2.840.10008.5.1.4.1.1.88.33", "SR")
    assert read_image(tmp_path).geometry.size == (512, 512, 3)


def test_confined_data_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ct.raw").write_bytes(b"1")
    os.symlink(tmp_path / "sub" / "ct.raw", tmp_path / "link.raw")
    header = tmp_path / "ct.mhd"
    assert confined(tmp_path, "sub/ct.raw", header, "ElementDataFile") == tmp_path / "sub" / "ct.raw"
    assert confined(tmp_path, "link.raw", header, "ElementDataFile") == tmp_path / "sub" / "ct.raw"  # stays inside
    assert confined(tmp_path, str(tmp_path / "sub" / "ct.raw"), header, "ElementDataFile").name == "ct.raw"
    for name in ("../ct.raw", "sub/../../ct.raw", "/etc/passwd"):
        with pytest.raises(UnsafePathError, match="outside it"):
            confined(tmp_path, name, header, "ElementDataFile")
