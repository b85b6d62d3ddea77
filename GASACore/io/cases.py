"""Batch mode: turn an input path (file, DICOM folder or folder of cases) into a list of cases."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from GASACore.errors import InputError
from GASACore.io.dicom import find_series_folders, has_dicom_series
from GASACore.io.formats import IMAGE_SUFFIXES, image_suffix, strip_suffix
from GASACore.io.pathkind import check_input_path

__all__ = ["Case", "find_cases"]

logger = logging.getLogger(__name__)


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
    dicom_dirs = [Case(p.name, p, True) for p in entries if p.is_dir() and has_dicom_series(p)]
    if has_dicom_series(folder):
        # The folder itself holds a series (alone, or next to image files / series sub-folders): one more case.
        dicom_dirs.append(Case(_folder_name(folder), folder, True))
    dicom_paths = {case.path for case in dicom_dirs}
    skipped = [p.name for p in entries if p.is_dir() and p not in dicom_paths]
    if skipped:
        logger.info("skipping sub-folders of %s that hold no DICOM series: %s", folder, skipped)
    return images + dicom_dirs


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
        deeper = find_series_folders(path)
        hint = f"; DICOM series lie deeper, in {deeper}: pass one of those folders" if deeper else ""
        raise InputError(
            f"expected image files ({', '.join(IMAGE_SUFFIXES)}) or DICOM series in folder {path} or its "
            f"sub-folders, found none{hint}"
        )
    logger.info("found %d case(s) in %s", len(cases), path)
    return _unique_names(cases)
