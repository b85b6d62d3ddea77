"""DICOM series folders: find the series in a folder, choose one, read it (SimpleITK / GDCM)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from GASACore.errors import InputError
from GASACore.io.formats import image_suffix

__all__ = ["DicomSeries", "has_dicom_series", "list_dicom_series", "read_dicom_series", "select_dicom_series"]

logger = logging.getLogger(__name__)

#: Set by ITK's ImageSeriesReader when slice positions are not evenly spaced.
_NON_UNIFORM_KEY = "ITK_non_uniform_sampling_deviation"


@dataclass(frozen=True)
class DicomSeries:
    """One DICOM series of a folder.

    Attributes:
        uid: SeriesInstanceUID (may be ``""`` when the files lack it).
        files: the slice files, sorted by GDCM along the slice normal.
    """

    uid: str
    files: tuple[str, ...]

    @property
    def description(self) -> str:
        """SeriesDescription (0008,103E) of the first file, ``""`` when absent or unreadable."""
        reader = sitk.ImageFileReader()
        reader.SetFileName(self.files[0])
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            return ""
        key = "0008|103e"
        return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""

    def summary(self) -> str:
        """``'UID' (N slices, 'description')`` for messages."""
        description = self.description
        details = f"{len(self.files)} slices" + (f", {description!r}" if description else "")
        return f"{self.uid!r} ({details})"


@contextmanager
def _quiet_itk() -> Iterator[None]:
    """Silence ITK's stderr warnings (e.g. GDCM's 'No Series were found') for the duration."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def list_dicom_series(folder: Path) -> list[DicomSeries]:
    """DICOM series directly inside ``folder`` (not its sub-folders), most slices first, then by UID."""
    with _quiet_itk():
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        series = [
            DicomSeries(uid, tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))) for uid in uids
        ]
    series = [item for item in series if item.files]
    return sorted(series, key=lambda item: (-len(item.files), item.uid))


def has_dicom_series(folder: Path) -> bool:
    """True when ``folder`` directly holds at least one DICOM series."""
    with _quiet_itk():
        return bool(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def _where_else(folder: Path) -> str:
    """Hint for a folder without a series: its sub-folders that hold one, or its image files."""
    entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    with_series = [entry.name for entry in entries if entry.is_dir() and has_dicom_series(entry)]
    if with_series:
        return f"; its sub-folders {with_series[:5]} hold DICOM series: pass one of them"
    images = [entry.name for entry in entries if entry.is_file() and image_suffix(entry) is not None]
    if images:
        return f"; it holds image files {images[:5]}: pass one of them"
    return " (no readable DICOM files in it)"


def select_dicom_series(folder: Path, series: str | None = None) -> DicomSeries:
    """The series of ``folder`` to read: the one whose SeriesInstanceUID is ``series``, else the longest.

    Several series and no ``series`` -> the one with the most slices, with a warning that names the others.

    Raises:
        InputError: the folder holds no DICOM series, or none with UID ``series``.
    """
    found = list_dicom_series(folder)
    if not found:
        raise InputError(f"expected a DICOM series in folder {folder}, found none{_where_else(folder)}")
    if series is not None:
        chosen = [item for item in found if item.uid == series]
        if not chosen:
            available = ", ".join(item.summary() for item in found)
            raise InputError(f"no DICOM series with SeriesInstanceUID {series!r} in {folder}; available: {available}")
        return chosen[0]
    if len(found) > 1:
        others = ", ".join(item.summary() for item in found[1:])
        logger.warning(
            "%s holds %d DICOM series; reading %s, the one with the most slices. Others: %s. "
            "Choose one with series=<SeriesInstanceUID>.",
            folder,
            len(found),
            found[0].summary(),
            others,
        )
    return found[0]


def read_dicom_series(series: DicomSeries) -> sitk.Image:
    """Read all slices of ``series`` into one image (rescale slope/intercept applied by GDCM).

    Unevenly spaced or missing slices are logged as a warning: the image then has the mean slice spacing.

    Raises:
        InputError: GDCM/ITK cannot assemble the slices (e.g. different slice sizes, corrupt files).
    """
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(series.files))
    folder = Path(series.files[0]).parent
    try:
        with _quiet_itk():
            image = reader.Execute()
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1]
        raise InputError(
            f"expected a readable DICOM series, could not read series {series.uid!r} "
            f"({len(series.files)} files) in {folder}: {reason}"
        ) from err
    if image.HasMetaDataKey(_NON_UNIFORM_KEY):
        logger.warning(
            "DICOM series %r in %s has unevenly spaced or missing slices (gaps %s mm); it is read with the mean "
            "slice spacing %.4g mm, so positions along the slice axis can be off",
            series.uid,
            folder,
            _slice_gaps(series, image.GetDirection()[2::3]),
            image.GetSpacing()[2],
        )
    return image


def _slice_gaps(series: DicomSeries, normal: Sequence[float]) -> str:
    """Distinct distances (mm) between consecutive slices along ``normal``, e.g. ``"2, 4"``."""
    positions = []
    for name in series.files:
        reader = sitk.ImageFileReader()
        reader.SetFileName(name)
        reader.ReadImageInformation()
        positions.append(float(np.dot(reader.GetOrigin(), normal)))
    gaps = np.unique(np.round(np.abs(np.diff(positions)), 3))
    return ", ".join(f"{gap:g}" for gap in gaps)
