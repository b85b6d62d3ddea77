"""Batch mode: turn an input path (file, DICOM folder or folder of cases) into a list of cases."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from GASACore.errors import InputError
from GASACore.io.dicom import find_series_folders, select_dicom_series, series_uids
from GASACore.io.formats import IMAGE_SUFFIXES, image_suffix, looks_like_dicom_file, strip_suffix
from GASACore.io.pathkind import check_input_path

__all__ = ["Case", "find_cases"]

logger = logging.getLogger(__name__)

#: Files of a folder without cases looked at for a DICOM preamble (enough to tell a DICOM folder).
_DICOM_PROBES = 50


@dataclass(frozen=True)
class Case:
    """One image to segment.

    Attributes:
        name: unique name within the batch, used for output file names (``case_01`` for ``case_01.nii.gz``,
            the folder name for a DICOM folder).
        path: the image file or DICOM series folder.
        is_dicom: True when ``path`` is a DICOM series folder.
    """

    name: str
    path: Path
    is_dicom: bool


def _unique_names(cases: list[Case]) -> list[Case]:
    """Rename later duplicates ``name_2``, ``name_3``... so that outputs never collide."""
    used: set[str] = set()
    result = []
    for case in cases:
        name, count = case.name, 1
        while name in used:
            count += 1
            name = f"{case.name}_{count}"
        if name != case.name:
            logger.warning("two inputs are both named %r; %s is named %r in the outputs", case.name, case.path, name)
        used.add(name)
        result.append(Case(name, case.path, case.is_dicom))
    return result


def _folder_name(folder: Path) -> str:
    return folder.resolve().name or "dicom"


def _cases_in_folder(folder: Path) -> list[Case]:
    entries = sorted((entry for entry in folder.iterdir() if not entry.name.startswith(".")), key=lambda p: p.name)
    images = [Case(strip_suffix(p), p, False) for p in entries if p.is_file() and image_suffix(p) is not None]
    uids = {p: series_uids(p) for p in [*(entry for entry in entries if entry.is_dir()), folder]}
    dicom_dirs = [Case(p.name, p, True) for p in entries if p.is_dir() and uids[p]]
    if uids[folder]:
        # The folder itself holds a series (alone, or next to image files / series sub-folders): one more case.
        dicom_dirs.append(Case(_folder_name(folder), folder, True))
    dicom_paths = {case.path for case in dicom_dirs}
    _refuse_split_series({case.path: uids[case.path] for case in dicom_dirs})
    skipped = [p.name for p in entries if p.is_dir() and p not in dicom_paths]
    if skipped:
        logger.info("skipping sub-folders of %s that hold no DICOM series: %s", folder, skipped)
    return images + dicom_dirs


def _refuse_empty_folder(path: Path) -> None:
    """Raise the reason a folder holds no case, naming what it does hold.

    DICOM files that form no image series (SEG, SR, encapsulated PDF, presentation states, files without pixel
    data) are named by :func:`~GASACore.io.dicom.select_dicom_series`'s own refusal.
    """
    entries = sorted(entry for entry in path.iterdir() if not entry.name.startswith("."))
    files = [entry for entry in entries if entry.is_file()]
    if any(looks_like_dicom_file(entry) for entry in files[:_DICOM_PROBES]):
        select_dicom_series(path)  # raises: non-image objects or unreadable files, each by name
    deeper = find_series_folders(path)
    if deeper:
        found = f"none; DICOM series lie deeper, in {deeper}: pass one of those folders"
    elif entries:
        names = ", ".join(entry.name + ("/" if entry.is_dir() else "") for entry in entries[:5])
        more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        found = f"none: it holds only {names}{more}, which are not image files or DICOM image series"
    else:
        found = "none: it holds only hidden entries" if any(path.iterdir()) else "none: the folder is empty"
    raise InputError(
        f"expected image files ({', '.join(IMAGE_SUFFIXES)}) or DICOM series in folder {path} or its "
        f"sub-folders, found {found}"
    )


def _refuse_split_series(folders: dict[Path, tuple[str, ...]]) -> None:
    """Refuse DICOM case folders (folder -> its SeriesInstanceUIDs) that hold parts of one series: each part alone
    would be segmented as a volume."""
    seen: dict[str, Path] = {}
    for folder, uids in folders.items():
        for uid in (uid for uid in uids if uid.strip()):  # a missing UID ties nothing together
            first = seen.setdefault(uid, folder)
            if first != folder:
                raise InputError(
                    f"expected each DICOM series in one folder, got series {uid!r} in both {first} and {folder} "
                    "(split between them, or copied): each would be segmented as a volume of its own; put all its "
                    "slices in one folder, once"
                )


def find_cases(path: str | Path) -> list[Case]:
    """List the cases of a batch.

    Args:
        path: an image file (one case); a DICOM series folder (one case); or a folder holding image files
            (one case each, sorted by file name) and/or sub-folders that hold DICOM series (one case each).
            Hidden entries and other files are ignored; sub-folders are searched one level deep.

    Returns:
        The cases, image files first, with unique names.

    Raises:
        InputError: the path is missing, is a file with an unsupported suffix, or a folder with no case in it.
    """
    path = Path(path)
    check_input_path(path, "an image file or a folder of cases")
    if path.is_file():
        if image_suffix(path) is None:
            raise InputError(f"expected an image file ({', '.join(IMAGE_SUFFIXES)}) or a folder, got {path}")
        return [Case(strip_suffix(path), path, False)]
    cases = _cases_in_folder(path)
    if not cases:
        _refuse_empty_folder(path)
    logger.info("found %d case(s) in %s", len(cases), path)
    return _unique_names(cases)
