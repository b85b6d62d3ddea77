"""Read the text headers of MetaImage (``.mha`` / ``.mhd``) and NRRD files far enough to find their voxel data.

SimpleITK reads these formats; this module only answers, before SimpleITK opens anything, *where* the data are
(inline, one data file, a ``LIST`` or a pattern of files, each confined to the header's folder) and *how* they
are stored, as a :class:`~GASACore.io.datafiles.DataLayout`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from GASACore.errors import DamagedFileError, InputError
from GASACore.io.datafiles import MAX_DATA_FILES, DataLayout, DataPiece, confined
from GASACore.io.formats import describe_content

__all__ = ["MAX_HEADER_BYTES", "data_files_of", "metaimage_layout", "nrrd_layout"]

#: Longest text header read (bytes); a longer one is refused as damaged.
MAX_HEADER_BYTES = 1 << 20

#: MetaImage ElementType values (MetaIO's MET_*; ``_ARRAY`` variants are the same types).
_MET_TYPES = frozenset(
    f"MET_{name}"
    for name in [
        "CHAR",
        "UCHAR",
        "SHORT",
        "USHORT",
        "INT",
        "UINT",
        "LONG",
        "ULONG",
        "LONG_LONG",
        "ULONG_LONG",
        "FLOAT",
        "DOUBLE",
    ]
)
#: MetaImage fields of numbers (lower-case key -> name, how many: NDims or NDims^2, unit) that MetaIO reads as 0
#: where they are not numbers: ``Offset = 10 nan 30`` would place the image at y = 0 without a word.
_METAIMAGE_NUMBERS = {
    "elementspacing": ("ElementSpacing", "ndims", " (mm)"),
    "elementsize": ("ElementSize", "ndims", " (mm)"),
    "offset": ("Offset", "ndims", " (mm)"),
    "origin": ("Origin", "ndims", " (mm)"),
    "position": ("Position", "ndims", " (mm)"),
    "centerofrotation": ("CenterOfRotation", "ndims", " (mm)"),
    "transformmatrix": ("TransformMatrix", "square", ""),
    "rotation": ("Rotation", "square", ""),
    "orientation": ("Orientation", "square", ""),
}
_NRRD_ENCODINGS = {
    "raw": "raw",
    "txt": "text",
    "text": "text",
    "ascii": "text",
    "hex": "hex",
    "gz": "gzip",
    "gzip": "gzip",
    "bz2": "bzip2",
    "bzip2": "bzip2",
}


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(MAX_HEADER_BYTES + 1)


def _lines(head: bytes) -> list[tuple[str, int]]:
    """Header lines (text, byte offset just after the line's end)."""
    lines, start = [], 0
    while start < len(head):
        end = head.find(b"\n", start)
        if end < 0:
            end = len(head) - 1 if len(head) <= MAX_HEADER_BYTES else -1
            if end < 0:
                break
        lines.append((head[start : end + 1].rstrip(b"\r\n").decode("latin-1"), end + 1))
        start = end + 1
    return lines


def _pattern_names(source: Path, key: str, value: str) -> tuple[list[str], bool]:
    """``printf``-style data file names (``slice%03d.raw 1 20 1``); (names, True) or ([], False) if not a pattern."""
    parts = value.split()
    if len(parts) < 4 or "%" not in parts[0]:
        return [], False
    try:
        low, high, step = (int(v) for v in parts[1:4])
        count = len(range(low, high + 1, step)) if step else MAX_DATA_FILES + 1
        if count > MAX_DATA_FILES:
            raise ValueError(f"{count} files")
        return [parts[0] % i for i in range(low, high + 1, step)], True
    except (TypeError, ValueError) as err:
        raise DamagedFileError(
            f"expected a data file pattern 'name%d min max step' (at most {MAX_DATA_FILES} files) after {key} "
            f"in {source}, got {value!r} ({err})"
        ) from err


def _named_files(source: Path, key: str, value: str, following: list[str]) -> list[Path]:
    folder = source.parent
    if value.split()[:1] and value.split()[0].upper() == "LIST":
        names = [line.strip() for line in following if line.strip()]
    else:
        names, is_pattern = _pattern_names(source, key, value)
        if not is_pattern:
            names = [value.strip()]
    if not names or len(names) > MAX_DATA_FILES:
        raise DamagedFileError(f"expected 1 to {MAX_DATA_FILES} data files after {key} in {source}, got {len(names)}")
    return [confined(folder, name, source, key) for name in names]


def metaimage_layout(path: Path) -> DataLayout:
    """The voxel data of a MetaImage header: ``ElementDataFile`` (``LOCAL``, a file, ``LIST`` or a pattern).

    Raises:
        InputError: the file is not a MetaImage header.
        DamagedFileError: no ``ElementDataFile`` line within :data:`MAX_HEADER_BYTES`, or bad numbers.
        UnsafePathError: a data file lies outside the header's folder.
    """
    head = _head(path)
    if not re.match(rb"\s*(ObjectType|NDims|Comment|ObjectSubType|TransformType)\b", head[:64]):
        raise InputError(
            f"expected a MetaImage header (ObjectType = Image ...) in {path}, got {describe_content(head)}"
        )
    fields: dict[str, str] = {}
    lines = _lines(head)
    for index, (line, end) in enumerate(lines):
        key, _, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        fields[key] = value
        if key == "elementdatafile":
            _check_metaimage_grid(path, fields)
            return _metaimage_pieces(path, fields, end, [text for text, _ in lines[index + 1 :]])
    where = f"in its first {MAX_HEADER_BYTES} bytes" if len(head) > MAX_HEADER_BYTES else "at all"
    raise DamagedFileError(f"expected an ElementDataFile line in the MetaImage header {path}, found none {where}")


def _check_metaimage_grid(path: Path, fields: dict[str, str]) -> None:
    """Refuse a DimSize or ElementSpacing that MetaIO would misread (text as 0, -14 as 4294967282, nan as 0).

    Raises:
        DamagedFileError: NDims is not a whole number from 1 to 7, DimSize not NDims whole numbers, or
            ElementSpacing / ElementSize / Offset (Origin, Position) not NDims finite numbers, or TransformMatrix
            (Rotation, Orientation) not NDims x NDims finite numbers.
    """
    ndims_text = fields.get("ndims", "")
    if not re.fullmatch(r"\s*[1-7]\s*", ndims_text):
        raise DamagedFileError(f"expected NDims = 1 to 7 in the MetaImage header {path}, got {ndims_text!r}")
    ndims = int(ndims_text)
    dims = fields.get("dimsize", "").split()
    if len(dims) != ndims or not all(re.fullmatch(r"\+?[0-9]+", v) for v in dims):
        raise DamagedFileError(
            f"expected DimSize = {ndims} whole numbers (NDims = {ndims}) in the MetaImage header {path}, "
            f"got {fields.get('dimsize', '')!r}"
        )
    element_type = fields.get("elementtype", "").strip()
    if element_type.upper().removesuffix("_ARRAY") not in _MET_TYPES:
        raise DamagedFileError(
            f"expected ElementType = one of {', '.join(sorted(_MET_TYPES))} in the MetaImage header {path}, "
            f"got {element_type!r}"
        )
    for key, (name, count, unit) in _METAIMAGE_NUMBERS.items():
        values = fields.get(key, "").split()
        wanted = ndims * ndims if count == "square" else ndims
        if values and (len(values) != wanted or not all(_finite(v) for v in values)):
            raise DamagedFileError(
                f"expected {name} = {wanted} finite numbers{unit} in the MetaImage header {path}, got {fields[key]!r}: "
                "MetaIO would read what is not a number as 0 and misplace the image"
            )


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _int_field(fields: dict[str, str], key: str, source: Path, default: int) -> int:
    text = fields.get(key.lower(), "").strip()
    if not text:
        return default
    try:
        return int(float(text))
    except ValueError as err:
        raise DamagedFileError(f"expected a whole number for {key} in {source}, got {text!r}") from err


def _metaimage_pieces(path: Path, fields: dict[str, str], data_start: int, following: list[str]) -> DataLayout:
    compressed = fields.get("compresseddata", "false").lower() == "true"
    binary = fields.get("binarydata", "true").lower() != "false"
    encoding = "gzip" if compressed else ("raw" if binary else "text")
    header_size = _int_field(fields, "HeaderSize", path, 0)
    length = _int_field(fields, "CompressedDataSize", path, 0) if compressed else 0
    value = fields["elementdatafile"]
    if value.upper() == "LOCAL":
        if compressed and not length:
            raise DamagedFileError(
                f"expected a CompressedDataSize line in the MetaImage header {path} (CompressedData = True with "
                "the data in the same file), found none: MetaIO then misreads the compressed voxels as other values"
            )
        start = -1 if header_size == -1 else data_start + max(0, header_size)
        return DataLayout((DataPiece(path, start, encoding, length or None),), path)
    files = _named_files(path, "ElementDataFile", value, following)
    start = -1 if header_size == -1 else max(0, header_size)
    one_length = (length or None) if len(files) == 1 else None
    return DataLayout(tuple(DataPiece(file, start, encoding, one_length) for file in files), path)


_VECTOR = re.compile(r"\(([^()]*)\)")


def _check_nrrd_vectors(path: Path, fields: dict[str, str]) -> None:
    """Refuse a ``space origin`` or ``space directions`` vector that is not all finite numbers, in our words.

    Raises:
        DamagedFileError: naming the field and its text (``(10,nan,30)``, ``(1,0)``...).
    """
    for key, name in (("spaceorigin", "space origin"), ("spacedirections", "space directions")):
        text = fields.get(key, "").strip()
        if not text:
            continue
        rest = _VECTOR.sub(" ", text).replace("none", " ").strip()
        vectors = [part.split(",") for part in _VECTOR.findall(text)]
        if rest or not vectors or not all(len(v) == len(vectors[0]) and all(_finite(c) for c in v) for v in vectors):
            raise DamagedFileError(
                f"expected '{name}' to be vectors of finite numbers such as (10,-20,30) (or none for a non-spatial "
                f"axis) in the NRRD header of {path}, got {text!r}"
            )


def nrrd_layout(path: Path) -> DataLayout:
    """The voxel data of a NRRD file: inline after the header's blank line, or its ``data file`` field.

    Raises:
        InputError: the file is not NRRD, or its encoding is unknown.
        DamagedFileError: a header longer than :data:`MAX_HEADER_BYTES`, no data, or bad numbers.
        UnsafePathError: a data file lies outside the header's folder.
    """
    head = _head(path)
    if not head.startswith(b"NRRD000"):
        raise InputError(f"expected a NRRD file (starting 'NRRD000'), got {describe_content(head)} in {path}")
    fields: dict[str, str] = {}
    lines = _lines(head)
    inline_start, data_value, following = -1, None, []
    for index, (line, end) in enumerate(lines[1:], start=1):
        if line == "":
            inline_start = end
            break
        if line.startswith("#") or ":=" in line.partition(": ")[0]:
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower().replace(" ", "")
        fields[key] = value.strip()
        if key == "datafile":
            data_value = value.strip()
            following = [text for text, _ in lines[index + 1 :]]
            break
    if inline_start < 0 and data_value is None:
        if len(head) > MAX_HEADER_BYTES:
            raise DamagedFileError(f"expected a NRRD header of at most {MAX_HEADER_BYTES} bytes in {path}")
        raise DamagedFileError(
            f"expected voxel data in the NRRD file {path}: inline after a blank line or in a 'data file', found neither"
        )
    _check_nrrd_vectors(path, fields)
    name = fields.get("encoding", "raw").lower()
    if name not in _NRRD_ENCODINGS:
        raise InputError(f"expected a NRRD encoding of {sorted(set(_NRRD_ENCODINGS))}, got {name!r} in {path}")
    encoding = _NRRD_ENCODINGS[name]
    line_skip = _int_field(fields, "lineskip", path, 0)
    byte_skip = _int_field(fields, "byteskip", path, 0)
    if line_skip < 0 or byte_skip < -1 or (byte_skip == -1 and encoding != "raw"):
        raise DamagedFileError(
            f"expected line skip >= 0 and byte skip >= 0 (-1 only for raw data) in {path}, got {line_skip}, {byte_skip}"
        )
    if data_value is None:
        files, base = [path], inline_start
    else:
        files, base = _named_files(path, "'data file'", data_value, following), 0
    if byte_skip == -1:  # raw data that are the file's last bytes
        pieces = [DataPiece(file, -1, encoding) for file in files]
    elif encoding == "raw" and not line_skip:
        pieces = [DataPiece(file, base + byte_skip, encoding) for file in files]
    else:  # lines are skipped first, then bytes (of the decoded data when compressed)
        pieces = [DataPiece(file, base, encoding, None, line_skip, byte_skip) for file in files]
    return DataLayout(tuple(pieces), path)


def data_files_of(path: Path) -> list[Path]:
    """The files other than ``path`` that hold its voxels: a ``.mhd`` / ``.nhdr`` header's data files, a NIfTI
    pair's ``.img``; ``[]`` for a single-file image or a header that cannot be parsed (its read refuses it).

    For the output checks: an output must never replace an input's voxel data (``-o vox.nii`` for a ``.mhd``
    whose ElementDataFile is ``vox.nii``).
    """
    from GASACore.errors import GASAError
    from GASACore.io.formats import image_suffix

    suffix = image_suffix(path)
    layouts = {".mha": metaimage_layout, ".mhd": metaimage_layout, ".nrrd": nrrd_layout, ".nhdr": nrrd_layout}
    if suffix == ".hdr":
        return [path.with_name(path.name[: -len(".hdr")] + ending) for ending in (".img", ".img.gz")]
    if suffix not in layouts:
        return []
    try:
        layout = layouts[suffix](path)
    except (GASAError, OSError):
        return []
    return [piece.path for piece in layout.pieces if piece.path.resolve() != path.resolve()]
