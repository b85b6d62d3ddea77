"""DICOM series folders: find the image series in a folder, choose one, check its slices, read it (SimpleITK / GDCM).

Non-image objects (SEG, RTSTRUCT, RTPLAN, SR, presentation states, KO, DICOMDIR...) are recognised from their
File Meta Information and left out of every series; a file that claims to be DICOM but cannot be read is refused
by name (a damaged slice left out would shorten or hole the volume without a word).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from GASACore.errors import DamagedFileError, InputError
from GASACore.io.dicomstack import read_slice_info, stack_slices
from GASACore.io.dicomtags import non_image_kind, read_file_meta
from GASACore.io.formats import image_suffix
from GASACore.io.limits import check_image_size

__all__ = [
    "DicomSeries",
    "find_series_folders",
    "has_dicom_series",
    "list_dicom_series",
    "read_dicom_series",
    "select_dicom_series",
    "series_uids",
]

logger = logging.getLogger(__name__)


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
        return self._first_tag("0008|103e")

    @property
    def modality(self) -> str:
        """Modality (0008,0060) of the first file (``"CT"``, ``"MR"``...), ``""`` when absent or unreadable."""
        return self._first_tag("0008|0060").upper()

    def _first_tag(self, key: str) -> str:
        reader = sitk.ImageFileReader()
        reader.SetFileName(self.files[0])
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            return ""
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


@dataclass(frozen=True)
class _FolderScan:
    """The DICOM files directly in a folder: non-image objects (file name -> kind) and damaged files."""

    non_image: dict[str, str]
    damaged: tuple[str, ...]


def _scan_folder(folder: Path, listed: set[str]) -> _FolderScan:
    non_image: dict[str, str] = {}
    damaged = []
    for entry in sorted(folder.iterdir()):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        meta = read_file_meta(entry)
        if meta is None:
            continue
        kind = non_image_kind(meta.get("0002|0002", ""))
        if kind:
            non_image[str(entry)] = kind
        elif str(entry) not in listed:
            damaged.append(entry.name)
    return _FolderScan(non_image, tuple(damaged))


def _gdcm_series(folder: Path) -> list[DicomSeries]:
    with _quiet_itk():
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        return [
            DicomSeries(uid, tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))) for uid in uids
        ]


def _image_series(folder: Path) -> tuple[list[DicomSeries], _FolderScan]:
    found = _gdcm_series(folder)
    scan = _scan_folder(folder, {name for item in found for name in item.files})
    series = [DicomSeries(item.uid, tuple(f for f in item.files if f not in scan.non_image)) for item in found]
    series = [item for item in series if item.files]
    return sorted(series, key=lambda item: (-len(item.files), item.uid)), scan


def list_dicom_series(folder: Path) -> list[DicomSeries]:
    """DICOM image series directly inside ``folder`` (not its sub-folders), most slices first, then by UID.

    Files of non-image objects (SEG, RTSTRUCT, SR...) are left out of every series.
    """
    return _image_series(folder)[0]


def series_uids(folder: Path) -> tuple[str, ...]:
    """The SeriesInstanceUIDs of the DICOM series directly inside ``folder`` (GDCM's grouping)."""
    with _quiet_itk():
        return tuple(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def has_dicom_series(folder: Path) -> bool:
    """True when ``folder`` directly holds at least one DICOM series."""
    return bool(series_uids(folder))


#: How deep :func:`find_series_folders` looks below a folder, and how many folders it visits at most.
SEARCH_DEPTH = 4
SEARCH_FOLDERS = 2000


def find_series_folders(folder: Path, *, most: int = 5) -> list[str]:
    """Up to ``most`` folders below ``folder`` (at most :data:`SEARCH_DEPTH` levels) that hold a DICOM series.

    For messages about a folder that holds none itself (a PACS export tree: patient / study / series); the
    paths are relative to ``folder``, breadth first, hidden folders and links skipped, at most
    :data:`SEARCH_FOLDERS` folders visited.
    """
    found: list[str] = []
    level, visited = [folder], 0
    for _ in range(SEARCH_DEPTH):
        below: list[Path] = []
        for parent in level:
            try:
                children = sorted(p for p in parent.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            for child in children:
                if child.name.startswith(".") or visited >= SEARCH_FOLDERS:
                    continue
                visited += 1
                if has_dicom_series(child):
                    found.append(child.relative_to(folder).as_posix())
                    if len(found) >= most:
                        return found
                below.append(child)
        level = below
    return found


def _where_else(folder: Path) -> str:
    """Hint for a folder without a series: the folders below it that hold one, or its image files."""
    entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    with_series = find_series_folders(folder)
    if with_series:
        return f"; DICOM series lie in the folders {with_series} below it: pass one of them"
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
    found, scan = _image_series(folder)
    if scan.damaged:
        names = ", ".join(scan.damaged[:10]) + (f" and {len(scan.damaged) - 10} more" if len(scan.damaged) > 10 else "")
        raise DamagedFileError(
            f"expected readable DICOM files in {folder}, but {len(scan.damaged)} cannot be read (damaged or cut "
            f"short): {names}; a slice left out would leave a hole in the volume, so restore them from the archive "
            "or move them out of the folder"
        )
    if scan.non_image:
        names = ", ".join(f"{Path(name).name} ({kind})" for name, kind in list(scan.non_image.items())[:10])
        if not found:
            raise InputError(f"expected a DICOM image series in folder {folder}, found only non-image objects: {names}")
        logger.warning("skipping DICOM objects that are not images in %s: %s", folder, names)
    if not found:
        raise InputError(f"expected a DICOM series in folder {folder}, found none{_where_else(folder)}")
    if series is not None:
        chosen = [item for item in found if item.uid == series]
        if not chosen:
            available = ", ".join(item.summary() for item in found)
            raise InputError(f"no DICOM series with SeriesInstanceUID {series!r} in {folder}; available: {available}")
        return chosen[0]
    if len(found) > 1 and len(found[0].files) < 2:
        raise InputError(
            f"expected a DICOM series of at least 2 slices in {folder}, got {len(found)} series of one slice each "
            "(every file has a SeriesInstanceUID of its own, e.g. "
            f"{', '.join(item.uid for item in found[:3])}): the files do not form one volume; re-export the series"
        )
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


def read_dicom_series(series: DicomSeries, *, limit: int) -> sitk.Image:
    """Read the slices of ``series`` into one image (rescale slope/intercept applied by GDCM), after checking them.

    Every slice header is read first (no pixel data): localizers and non-image objects are skipped with a
    warning, exact copies of a slice read once, and the stack must be regular (see
    :func:`GASACore.io.dicomstack.stack_slices`); its size must fit ``limit`` (bytes of float32) before any
    pixel is read.

    Raises:
        DamagedFileError: a slice header cannot be read.
        InputError: the slices are not one stack of single-frame images, or GDCM/ITK cannot assemble them.
        UnsupportedGeometryError: duplicate positions with different content, uneven spacing, gantry tilt.
        ImageTooLargeError: the volume would exceed ``limit``.
    """
    folder = Path(series.files[0]).parent
    with _quiet_itk():
        infos = [read_slice_info(name) for name in series.files]
        files, step = stack_slices(infos, folder)
        first = sitk.ImageFileReader()
        first.SetFileName(files[0])
        first.ReadImageInformation()
    columns, rows = first.GetSize()[:2]
    kept = set(files)
    pixel_ids = {info.pixel_id for info in infos if info.file in kept}
    dtype = sitk.GetArrayViewFromImage(sitk.Image([1, 1], first.GetPixelID())).dtype
    check_image_size(folder, (columns, rows, len(files)), dtype.name, dtype.itemsize, limit=limit)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    if len(pixel_ids) > 1:
        # ITK reads every slice as the first slice's type: a later slice whose rescale gives floats (or larger
        # integers) would be truncated or wrap around. Read them all as float32, each with its own rescale.
        logger.info("slices of %s read as %s types after their rescale: reading as float32", folder, len(pixel_ids))
        reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        with _quiet_itk():
            image = reader.Execute()
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1]
        raise InputError(
            f"expected a readable DICOM series, could not read series {series.uid!r} "
            f"({len(files)} files) in {folder}: {reason}"
        ) from err
    if len(files) > 1 and abs(image.GetSpacing()[2] - step) > 1e-3 * max(1.0, step):
        raise InputError(
            f"expected SimpleITK to stack series {series.uid!r} of {folder} with the slice spacing {step:.6g} mm "
            f"of its positions, got {image.GetSpacing()[2]:.6g} mm"
        )
    return image
