"""File name suffixes of the supported formats, a cheap DICOM file test and a description of unknown content."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_MAP_SUFFIXES",
    "SEGMENTATION_SUFFIX",
    "describe_content",
    "image_suffix",
    "label_map_suffix",
    "looks_like_dicom_file",
    "strip_suffix",
    "volume_suffix",
]

#: Suffixes :func:`GASACore.io.read_image` reads (lower case); DICOM comes as a folder. ``.hdr`` (a NIfTI-1 pair,
#: voxels in the ``.img`` next to it), ``.nhdr`` and ``.mhd`` are headers whose voxels are in a file next to them.
IMAGE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".hdr", ".nrrd", ".nhdr", ".mha", ".mhd")
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


def volume_suffix(path: Path) -> str | None:
    """The suffix of any 3D file this package reads, image or label map (``.seg.nrrd`` included), else None.

    For folders of label maps (references, predictions): ``case.seg.nrrd`` -> ``".seg.nrrd"``.
    """
    return _matching_suffix(path, _ALL_SUFFIXES)


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


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"NRRD", "a NRRD image (name it .nrrd)"),
    (b"ObjectType", "a MetaImage header (name it .mha or .mhd)"),
    (b"NDims", "a MetaImage header (name it .mha or .mhd)"),
)


def describe_content(head: bytes) -> str:
    r"""What the first bytes of a file look like, for a message about a file that is not what its name says.

    Examples:
        >>> describe_content(b"")
        'an empty file (0 bytes)'
        >>> describe_content(b"\x89PNG\r\n\x1a\n....")
        'a PNG image'
        >>> describe_content(b"hello, world\n")
        "text ('hello, world\\n')"
    """
    if not head:
        return "an empty file (0 bytes)"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "a DICOM file (pass its folder)"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    sample = head[:256]
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in sample):
        return f"text ({sample[:40].decode('ascii')!r})"
    return f"unrecognised data (first bytes {head[:8].hex(' ')})"
