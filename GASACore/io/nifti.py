"""Read a NIfTI-1 / NIfTI-2 file (``.nii``, ``.nii.gz``) through nibabel's header, with every claim checked first.

What nibabel decides: the header's byte order, data type, scaling (``scl_slope`` / ``scl_inter``, applied with
nibabel's own :func:`~nibabel.volumeutils.apply_read_scaling`) and the voxel-to-world affine, chosen as nnU-Net's
``NibabelIO`` chooses it (nibabel's ``affine``: the sform when ``sform_code > 0``, else the qform when
``qform_code > 0``, else nibabel's base affine from the voxel sizes).

What is checked here before a voxel is allocated: the dimensions (3D, or trailing axes of size 1), the affine
(orthonormal up to rounding, plausible spacing and origin), the bytes the header claims against the file
(uncompressed: file size minus ``vox_offset``; gzip: at most 1032 times the compressed size) and against the
memory limit. The voxel bytes are then read in bounded chunks, so a file cut short is an error naming the bytes
expected and found, and a gzip bomb is read no further than the header's claim plus one slice.

nibabel's affine is RAS; the :class:`~GASACore.io.Geometry` returned is LPS as SimpleITK reports it (x and y of
the affine negated), and the array is (z, y, x): NIfTI stores x fastest, so the bytes are already in that order.
"""

from __future__ import annotations

import logging
import math
import struct
from pathlib import Path

import numpy as np
from nibabel.nifti1 import Nifti1Header
from nibabel.nifti2 import Nifti2Header
from nibabel.spatialimages import HeaderDataError

from GASACore.errors import DamagedFileError, ImageTooLargeError, InputError, UnsupportedGeometryError
from GASACore.io.formats import describe_content
from GASACore.io.geometry import Geometry
from GASACore.io.grid import geometry_from_affine, spatial_size
from GASACore.io.limits import DEFLATE_MAX_RATIO, check_data_fits, check_image_size, format_bytes
from GASACore.io.stream import StreamError, VoxelStream, compression_of
from GASACore.io.voxels import pixel_type_name, to_float32

__all__ = ["NiftiImage", "read_nifti"]

logger = logging.getLogger(__name__)

_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_HEADER_SIZES = {348: Nifti1Header, 540: Nifti2Header}
#: NIfTI intents whose voxels are labels of another image, not intensities to segment (NIFTI_INTENT_LABEL, _NEURONAME).
_LABEL_INTENTS = {1002: "NIFTI_INTENT_LABEL", 1003: "NIFTI_INTENT_NEURONAME"}
#: NIfTI datatypes nibabel reads as something other than numbers (DT_BINARY: 1 bit per voxel).
_NON_NUMERIC_TYPES = {1: "DT_BINARY (1 bit per voxel)"}


class NiftiImage:
    """What :func:`read_nifti` returns: float32 (z, y, x) voxels, LPS geometry and the stored type's name.

    ``unplaced`` is True when the header has neither an sform nor a qform (both codes 0): the geometry is
    nibabel's fallback from the voxel sizes, and ITK places the same file elsewhere (origin 0, LPS axes).
    """

    __slots__ = ("array", "geometry", "pixel_type", "unplaced")

    def __init__(self, array: np.ndarray, geometry: Geometry, pixel_type: str, unplaced: bool = False) -> None:
        self.array, self.geometry, self.pixel_type, self.unplaced = array, geometry, pixel_type, unplaced


def _header(stream: VoxelStream, path: Path, *, pair: bool = False) -> Nifti1Header:
    """Parse the fixed header (348 or 540 bytes) with nibabel, without nibabel's silent fixes.

    ``pair``: ``path`` is the ``.hdr`` of a NIfTI pair, whose magic is ``ni1`` / ``ni2``.
    """
    head = stream.read(348)
    sizes = {struct.unpack("<i", head[:4])[0], struct.unpack(">i", head[:4])[0]} if len(head) >= 4 else set()
    known = sorted(sizes & set(_HEADER_SIZES))
    if known and len(head) < 348:
        raise DamagedFileError(
            f"expected a 348-byte NIfTI-1 header in {path}, found {len(head)} bytes: it is cut short"
        )
    if not known:
        raise InputError(f"expected a NIfTI-1 or NIfTI-2 image in {path}, got {describe_content(head)}")
    klass = _HEADER_SIZES[known[0]]
    if known[0] == 540:
        head += stream.read(540 - 348)
        if len(head) < 540:
            raise DamagedFileError(f"expected a 540-byte NIfTI-2 header in {path}, found {len(head)} bytes")
    header = klass(binaryblock=head, check=False)
    magic = bytes(header["magic"]).rstrip(b"\0")
    expected = (b"ni1" if known[0] == 348 else b"ni2") if pair else (b"n+1" if known[0] == 348 else b"n+2")
    if magic != expected:
        if magic in (b"ni1", b"ni2"):
            what = "a NIfTI header for a separate .img file (name it .hdr)"
        elif magic in (b"n+1", b"n+2") and not pair:
            what = f"the magic of the other NIfTI version in a {known[0]}-byte header: the header is damaged"
        elif magic in (b"n+1", b"n+2"):
            what = "the magic of a single-file NIfTI image (name it .nii)"
        elif pair and known[0] == 348:
            what = (
                "an Analyze 7.5 header (no NIfTI magic), whose orientation ITK and nibabel read differently: "
                "convert it to NIfTI with its true orientation first"
            )
        else:
            what = "no NIfTI magic"
        kind = "a NIfTI pair header" if pair else "a single-file NIfTI image"
        raise InputError(
            f"expected {kind} (magic {expected.decode()!r} after a {known[0]}-byte header) in {path}, got {what} "
            f"({magic!r})"
        )
    return header


def _dimensions(header: Nifti1Header, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    dim = [int(v) for v in header["dim"]]
    if not 1 <= dim[0] <= 7:
        raise DamagedFileError(f"expected 1 to 7 dimensions in the NIfTI header of {path}, got dim[0] = {dim[0]}")
    size = tuple(dim[1 : dim[0] + 1])
    try:
        dtype = np.dtype(header.get_data_dtype())
    except (HeaderDataError, KeyError, TypeError) as err:
        code = int(header["datatype"])
        raise InputError(f"expected a NIfTI data type nibabel knows, got datatype code {code} in {path}") from err
    if dtype.fields is not None:
        raise InputError(
            f"expected a scalar image (1 value per voxel), got {len(dtype.fields)} components per voxel "
            f"({dtype.descr}: an RGB or multi-channel image) in {path}, size {size}"
        )
    if dtype.kind == "c":
        raise InputError(f"expected real-valued voxels, got complex ({dtype.name}) voxels in {path}")
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        code = int(header["datatype"])
        stored = _NON_NUMERIC_TYPES.get(code, dtype.name)
        raise InputError(
            f"expected integer or float voxels (up to 64-bit), got {stored} (datatype code {code}) in {path}"
        )
    intent = int(header["intent_code"])
    if intent in _LABEL_INTENTS:
        raise InputError(
            f"expected an image to segment, got a label map: the NIfTI header of {path} has intent_code {intent} "
            f"({_LABEL_INTENTS[intent]}); pass the CT it was made from"
        )
    return size, dtype


def _form(header: Nifti1Header) -> str:
    if int(header["sform_code"]) != 0:
        return "sform"
    return "qform" if int(header["qform_code"]) != 0 else "voxel sizes (no sform or qform)"


def _check_units(header: Nifti1Header, path: Path) -> None:
    """Refuse spatial units other than millimetres: ITK (3D Slicer) scales the grid by them, nibabel does not."""
    unit = header.get_xyzt_units()[0]
    if unit in ("meter", "micron"):
        factor = "1000" if unit == "meter" else "1/1000"
        raise UnsupportedGeometryError(
            f"expected spatial units of millimetres (or unknown) in the NIfTI header of {path}, got {unit}s "
            f"(xyzt_units {int(header['xyzt_units'])}): ITK and 3D Slicer scale such a grid by {factor}, nibabel and "
            "nnU-Net do not, so the label map would not overlay the image in both; rewrite the header in mm"
        )


def _checked_qform(header: Nifti1Header, path: Path) -> Nifti1Header:
    """The header whose qform nibabel is asked for, with what ITK and nibabel both read the same way made explicit.

    ``pixdim[0]`` (qfac) of 0, left by old writers, is +1 for ITK and for nibabel's loader: set so. What the
    two read differently (negative voxel sizes: ITK flips the axis, nibabel takes the absolute value; quaternion
    parameters b, c, d that are not part of a unit quaternion: ITK rescales them, nibabel refuses) is refused.
    """
    pixdim = [float(v) for v in header["pixdim"][:4]]
    where = f"the qform of the NIfTI header of {path} (used because sform_code is 0)"
    if pixdim[0] not in (0.0, 1.0, -1.0):
        raise UnsupportedGeometryError(f"expected qfac (pixdim[0]) of 1 or -1 in {where}, got {pixdim[0]!r}")
    if not all(math.isfinite(v) for v in pixdim[1:]):
        raise UnsupportedGeometryError(f"expected finite voxel sizes pixdim[1..3] in {where}, got {tuple(pixdim[1:])}")
    if any(v < 0 for v in pixdim[1:]):
        raise UnsupportedGeometryError(
            f"expected positive voxel sizes pixdim[1..3] in {where}, got {tuple(pixdim[1:])}: ITK and 3D Slicer "
            "flip an axis of negative size, nibabel and nnU-Net do not, so its orientation is ambiguous"
        )
    quaternion = [float(header[f"quatern_{name}"]) for name in "bcd"]
    norm = sum(v * v for v in quaternion)
    if not math.isfinite(norm) or 1.0 - norm < -abs(header.quaternion_threshold):  # nibabel's rounding allowance
        raise UnsupportedGeometryError(
            f"expected the quaternion parameters (b, c, d) of a rotation, b^2 + c^2 + d^2 <= 1, in {where}, got "
            f"({', '.join(f'{v:.6g}' for v in quaternion)}) (b^2 + c^2 + d^2 = {norm:.6g}): the qform is damaged"
        )
    if pixdim[0] == 0.0:
        header = header.copy()
        header["pixdim"][0] = 1.0
    return header


def _geometry(header: Nifti1Header, size: tuple[int, int, int], path: Path) -> Geometry:
    form = _form(header)
    _check_units(header, path)
    chosen = _checked_qform(header, path) if form == "qform" else header
    try:
        affine = chosen.get_best_affine()  # nibabel's (and so nnU-Net's NibabelIO's) choice, in RAS
    except (HeaderDataError, ValueError) as err:
        raise InputError(f"expected a valid {form} in the NIfTI header of {path}: {err}") from err
    geometry = geometry_from_affine(path, size, _LPS_FROM_RAS @ affine, what=f"{form} affine (RAS)", shown=affine)
    zooms = np.abs(np.asarray(header["pixdim"][1:4], dtype=np.float64))
    if form == "sform" and not np.allclose(zooms, geometry.spacing, rtol=1e-4, atol=1e-6):
        logger.warning(
            "%s: pixdim %s differs from the sform's voxel sizes %s mm; the sform is used, as nibabel does",
            path,
            tuple(float(v) for v in zooms),
            geometry.spacing,
        )
    return geometry


def _scaling(header: Nifti1Header, path: Path) -> tuple[float | None, float | None]:
    """``scl_slope`` and ``scl_inter`` as nibabel reads them: a slope of 0, NaN or inf means no scaling."""
    stored_slope = float(header["scl_slope"])
    try:
        slope, inter = header.get_slope_inter()
    except HeaderDataError as err:
        raise InputError(f"expected a usable scaling in the NIfTI header of {path}: {err}") from err
    if slope is None and stored_slope != 0:
        # Writers (nibabel among them) leave NaN for "no scaling"; NIfTI itself says 0. Either way the stored
        # values are the voxels: NaN voxels stay NaN (and are refused), they never become 0.
        logger.debug("%s: scl_slope is %r: no scaling, as nibabel reads it", path, stored_slope)
    return slope, inter


def _data_offset(header: Nifti1Header, path: Path, *, pair: bool = False) -> int:
    offset = float(header["vox_offset"])
    size = int(header["sizeof_hdr"])
    if pair:  # the voxels are in the .img file, from byte vox_offset (usually 0)
        if not math.isfinite(offset) or offset < 0 or offset != int(offset):
            raise DamagedFileError(f"expected vox_offset >= 0 (a whole number) in {path}, got {offset!r}")
        return int(offset)
    if offset == 0:
        return size + 4  # an unset offset: the data follows the header and its 4 extension bytes
    if not math.isfinite(offset) or offset < size + 4 or offset != int(offset):
        raise DamagedFileError(
            f"expected vox_offset >= {size + 4} (the data starts after the header), got {offset!r} in {path}"
        )
    return int(offset)


def _stream_damaged(path: Path, err: StreamError, found: int, claimed: tuple[tuple[int, ...], np.dtype]) -> None:
    size, dtype = claimed
    if err.truncated:
        check_data_fits(path, size, dtype.name, dtype.itemsize, found, detail=f" before {err}")
    nbytes = math.prod(size) * dtype.itemsize
    raise DamagedFileError(
        f"expected intact compressed data in {path}, but {err} (after {min(found, nbytes)} of the {nbytes} bytes of "
        "voxel data): the file is damaged"
    ) from err


def _read_voxels(stream: VoxelStream, path: Path, offset: int, claimed: tuple[tuple[int, ...], np.dtype]) -> np.ndarray:
    """The claimed voxel bytes, read into a lazily allocated buffer; refuses a short or over-long stream."""
    size, dtype = claimed
    nbytes = math.prod(size) * dtype.itemsize
    try:
        raw = np.empty(nbytes, np.uint8)
    except MemoryError as err:
        raise ImageTooLargeError(f"could not allocate {format_bytes(nbytes)} for the voxels of {path}") from err
    try:
        if stream.skip(offset - stream.position) < offset - stream.position:
            check_data_fits(path, size, dtype.name, dtype.itemsize, 0, detail=" (the file ends before vox_offset)")
        found = stream.readinto(memoryview(raw))
    except StreamError as err:
        _stream_damaged(path, err, max(0, stream.position - offset), claimed)
    detail = f" before the {stream.encoding} stream ended" if stream.encoding != "raw" else " in the file"
    check_data_fits(path, size, dtype.name, dtype.itemsize, found, detail=detail)
    slice_bytes = size[0] * size[1] * dtype.itemsize
    try:
        extra = stream.skip(slice_bytes)  # reaching the end of a gzip stream also checks its CRC
    except StreamError as err:
        _stream_damaged(path, err, nbytes, claimed)
    if extra >= slice_bytes:
        raise DamagedFileError(
            f"expected {nbytes} bytes of voxel data in {path} (its header claims {'x'.join(map(str, size))} "
            f"{dtype.name}), found at least one slice ({slice_bytes} bytes) more: the header's size is wrong"
        )
    return raw


def _read_checked(
    stream: VoxelStream, path: Path, file_size: int, offset: int, claimed: tuple[tuple[int, ...], np.dtype], limit: int
) -> np.ndarray:
    """The voxel bytes of ``stream`` once the file (of ``file_size`` bytes) is known to be able to hold them and
    their float32 array to fit ``limit``."""
    size, dtype = claimed
    if stream.encoding == "raw":
        check_data_fits(path, size, dtype.name, dtype.itemsize, max(0, file_size - offset), detail=" in the file")
    else:
        bound = file_size * DEFLATE_MAX_RATIO
        detail = f" at most ({format_bytes(file_size)} of {stream.encoding} data expand {DEFLATE_MAX_RATIO}-fold)"
        check_data_fits(path, size, dtype.name, dtype.itemsize, bound, detail=detail)
    check_image_size(path, size, dtype.name, dtype.itemsize, limit=limit)
    return _read_voxels(stream, path, offset, claimed)


def _read_pair_voxels(
    header_path: Path, offset: int, claimed: tuple[tuple[int, ...], np.dtype], limit: int
) -> np.ndarray:
    """The voxels of a NIfTI pair, from the ``.img`` (or ``.img.gz``) next to its ``.hdr``."""
    stem = header_path.name[: -len(".hdr")]
    candidates = [header_path.with_name(stem + ending) for ending in (".img", ".IMG", ".img.gz", ".IMG.GZ")]
    found = [candidate for candidate in candidates if candidate.is_file()]
    if not found:
        raise DamagedFileError(
            f"expected the voxel data of the NIfTI pair header {header_path} in {stem}.img next to it, found none"
        )
    data_path = found[0]
    with data_path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(0)
        stream = VoxelStream(handle, compression_of(head))
        try:
            return _read_checked(stream, data_path, data_path.stat().st_size, offset, claimed, limit)
        except DamagedFileError as err:
            raise DamagedFileError(f"{err} (the voxels of the NIfTI pair header {header_path})") from err


def read_nifti(path: Path, *, limit: int) -> NiftiImage:
    """Read a NIfTI file as float32 (z, y, x) voxels with LPS geometry.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file (compression is recognised from the content, not the name), or the
            ``.hdr`` of a NIfTI-1/2 pair whose voxels are in the ``.img`` (or ``.img.gz``) next to it.
        limit: the largest float32 array accepted, in bytes.

    Returns:
        The voxels (scaled as stored), their geometry and the stored type (``"16-bit signed integer"``).

    Raises:
        InputError: not a single-file NIfTI, not 3D, unsupported data type, an invalid scaling, NaN/inf voxels.
        UnsupportedGeometryError: a sheared affine, implausible spacing or origin.
        DamagedFileError: the file holds less voxel data than the header claims (or a slice more), or its
            gzip data is corrupt.
        ImageTooLargeError: the float32 array would exceed ``limit``.
    """
    pair = path.name.lower().endswith(".hdr")
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(0)
        stream = VoxelStream(handle, compression_of(head))
        try:
            header = _header(stream, path, pair=pair)
        except StreamError as err:
            raise DamagedFileError(f"expected a NIfTI header in {path}, but {err} before its end") from err
        size, dtype = _dimensions(header, path)
        size3 = spatial_size(path, size)
        geometry = _geometry(header, size3, path)
        slope, inter = _scaling(header, path)
        offset = _data_offset(header, path, pair=pair)
        if pair:
            raw = _read_pair_voxels(path, offset, (size, dtype), limit)
        else:
            raw = _read_checked(stream, path, path.stat().st_size, offset, (size, dtype), limit)
    values = raw.view(dtype).reshape(size3[::-1])
    array = to_float32(values, path, slope=slope, inter=inter, reuse=True)
    unplaced = _form(header).startswith("voxel")
    return NiftiImage(array, geometry, pixel_type_name(dtype), unplaced)
