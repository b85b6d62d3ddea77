"""Fixtures of the GASACore.io tests: synthetic DICOM series built from the real sample series."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
import SimpleITK as sitk

from GASACore.io import LoadedImage, read_image


class TwoSeries(NamedTuple):
    """A folder holding two DICOM series and their SeriesInstanceUIDs."""

    folder: Path
    long_uid: str  # 10 slices, description "tenslices"
    short_uid: str  # 4 slices, description "fourslices"


# Tags copied from the real slices into the synthetic series (patient, study, modality, geometry-related).
_KEPT_TAGS = ("0010|0010", "0010|0020", "0008|0060", "0020|000d", "0008|0020", "0018|0050", "0028|1050", "0028|1051")


@pytest.fixture(scope="session")
def dicom_folder(shared_data: Path) -> Path:
    """The real 20-slice DICOM series (512x512, 0.977 mm pixels, 2 mm slices)."""
    return shared_data / "totalsegmentator" / "example_ct_dicom"


@pytest.fixture(scope="session")
def dicom_slices(dicom_folder: Path) -> list[str]:
    """The real series' slice files, sorted along the slice normal by GDCM."""
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(dicom_folder)))


@pytest.fixture(scope="session")
def dicom_image(dicom_folder: Path) -> LoadedImage:
    """The real DICOM series read once by read_image (the tests must not modify it)."""
    return read_image(dicom_folder)


def write_dicom_series(slices: list[str], folder: Path, uid: str, description: str) -> None:
    """Re-write real slices as a new series with SeriesInstanceUID ``uid`` (voxels and geometry kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, source_file in enumerate(slices, start=1):
        source = sitk.ReadImage(source_file)
        image = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(source))
        image.CopyInformation(source)
        for tag in _KEPT_TAGS:
            if source.HasMetaDataKey(tag):
                image.SetMetaData(tag, source.GetMetaData(tag))
        image.SetMetaData("0020|000e", uid)
        image.SetMetaData("0008|0018", f"{uid}.{number}")
        image.SetMetaData("0008|103e", description)
        image.SetMetaData("0020|0013", str(number))
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / f"{description}_{number:03d}.dcm"))
        writer.Execute(image)


@pytest.fixture(scope="session")
def two_series(tmp_path_factory: pytest.TempPathFactory, dicom_slices: list[str]) -> TwoSeries:
    """A folder with two DICOM series: slices 0-9 of the real series and slices 12-15, with new UIDs."""
    result = TwoSeries(
        tmp_path_factory.mktemp("two_series"), "1.2.826.0.1.3680043.8.498.90001", "1.2.826.0.1.3680043.8.498.90002"
    )
    write_dicom_series(dicom_slices[:10], result.folder, result.long_uid, "tenslices")
    write_dicom_series(dicom_slices[12:16], result.folder, result.short_uid, "fourslices")
    return result
