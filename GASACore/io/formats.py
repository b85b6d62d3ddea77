"""File name suffixes of the supported formats, and a cheap DICOM file test."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_MAP_SUFFIXES",
    "SEGMENTATION_SUFFIX",
    "image_suffix",
    "label_map_suffix",
    "looks_like_dicom_file",
    "strip_suffix",
]

#: Suffixes :func:`GASACore.io.read_image` reads (lower case); DICOM comes as a folder.
IMAGE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
#: Suffixes :func:`GASACore.io.write_label_map` writes (lower case).
LABEL_MAP_SUFFIXES: tuple[str, ...] = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".mha")
#: A 3D Slicer segmentation file: a label map, not an image to segment.
SEGMENTATION_SUFFIX = ".seg.nrrd"

_ALL_SUFFIXES = (SEGMENTATION_SUFFIX, *IMAGE_SUFFIXES)


def _matching_suffix(path: Path, suffixes: tuple[str, ...]) -> str | None:
    name = path.name.lower()
    # Longest first, so that ".seg.nrrd" wins over ".nrrd" and ".nii.gz" over ".gz".
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


def image_suffix(path: Path) -> str | None:
    """The image suffix of ``path`` (``".nii.gz"``...), or None when it is not a readable image name.

    A ``.seg.nrrd`` file (a segmentation) is not an image: None.
    """
    suffix = _matching_suffix(path, _ALL_SUFFIXES)
    return None if suffix == SEGMENTATION_SUFFIX else suffix


def label_map_suffix(path: Path) -> str | None:
    """The output suffix of ``path`` (``".seg.nrrd"``, ``".nii.gz"``...), or None when unsupported."""
    return _matching_suffix(path, LABEL_MAP_SUFFIXES)


def strip_suffix(path: Path) -> str:
    """File name without its known suffix: ``case_01.nii.gz`` -> ``case_01``; other names lose their last suffix."""
    suffix = _matching_suffix(path, _ALL_SUFFIXES)
    if suffix is not None:
        return path.name[: -len(suffix)]
    return path.stem or path.name


def looks_like_dicom_file(path: Path) -> bool:
    """True when the file has the DICOM Part 10 preamble (``DICM`` at byte 128). Reads 132 bytes."""
    try:
        with path.open("rb") as handle:
            header = handle.read(132)
    except OSError:
        return False
    return len(header) == 132 and header[128:] == b"DICM"
