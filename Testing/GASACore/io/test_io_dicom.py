"""DICOM series folders: the real sample series and a folder holding two series."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore.errors import InputError
from GASACore.io import Geometry, LoadedImage, read_image, write_label_map


def test_real_dicom_series_geometry(dicom_image: LoadedImage, dicom_folder: Path, dicom_slices: list[str]) -> None:
    reference = sitk.ReadImage(dicom_slices)  # SimpleITK's own reading of the series
    image = dicom_image
    assert image.geometry.size == (512, 512, 20)
    assert image.geometry.spacing == pytest.approx((0.977, 0.977, 2.0), abs=1e-3)
    assert image.geometry.is_close(Geometry.from_sitk(reference), atol=0.0)
    assert image.pixel_type == reference.GetPixelIDTypeAsString() == "16-bit signed integer"
    assert image.source == str(dicom_folder)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(reference))
    assert image.array.min() == -1024 and image.array.max() > 1000  # rescaled to Hounsfield units


def test_labels_on_the_dicom_grid_round_trip(tmp_path: Path, dicom_image: LoadedImage) -> None:
    image = dicom_image
    labels = (image.array > 150).astype(np.uint8) * 5
    for suffix in (".nii.gz", ".seg.nrrd"):
        back = sitk.ReadImage(str(write_label_map(labels, image.geometry, tmp_path / f"dicom_labels{suffix}")))
        assert Geometry.from_sitk(back).is_close(image.geometry)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), labels)


def test_the_longest_of_two_series_is_read_with_a_warning(
    two_series, dicom_slices: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="GASACore.io"):
        image = read_image(two_series.folder)
    assert image.geometry.size == (512, 512, 10)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(sitk.ReadImage(dicom_slices[:10])))
    warning = " ".join(record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    assert "2 DICOM series" in warning
    assert f"{two_series.long_uid!r} (10 slices, 'tenslices')" in warning
    assert f"Others: {two_series.short_uid!r} (4 slices, 'fourslices')" in warning
    assert "series=<SeriesInstanceUID>" in warning


def test_series_picks_the_shorter_one(two_series, dicom_slices: list[str], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="GASACore.io"):
        image = read_image(two_series.folder, series=two_series.short_uid)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    expected = sitk.ReadImage(dicom_slices[12:16])
    assert image.geometry.size == (512, 512, 4)
    assert image.geometry.is_close(Geometry.from_sitk(expected))
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(expected))


def test_an_unknown_series_lists_the_available_ones(two_series) -> None:
    with pytest.raises(InputError, match=r"no DICOM series with SeriesInstanceUID '9\.9\.9' in .*two_series") as error:
        read_image(two_series.folder, series="9.9.9")
    assert f"{two_series.long_uid!r} (10 slices" in str(error.value)
    assert f"{two_series.short_uid!r} (4 slices" in str(error.value)
