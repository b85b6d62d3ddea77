"""Builders of NIfTI inputs (bad and odd) for the bad-input set: files written byte by byte with nibabel's header.

Nothing here is stored in the repository: every file is made in a test's temporary folder.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
from nibabel.nifti1 import Nifti1Header
from nibabel.nifti2 import Nifti2Header

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def affine_of(spacing: tuple[float, ...], origin: tuple[float, ...], direction: tuple[float, ...]) -> np.ndarray:
    """The RAS voxel-to-world affine of an LPS geometry (the inverse of what the reader does)."""
    lps = np.eye(4)
    lps[:3, :3] = np.reshape(direction, (3, 3)) * np.asarray(spacing)
    lps[:3, 3] = origin
    return LPS_FROM_RAS @ lps


def nifti_bytes(
    values_zyx: np.ndarray,
    affine: np.ndarray | None = None,
    *,
    version: int = 1,
    endian: str = "<",
    dims: tuple[int, ...] | None = None,
    qform: bool = True,
    sform: bool = True,
    changes: dict[str, object] | None = None,
    extra: bytes = b"",
) -> bytes:
    """A single-file NIfTI (header, 4 extension bytes, voxels x fastest) holding ``values_zyx``.

    Args:
        values_zyx: the voxels, numpy (z, y, x); stored with their dtype in byte order ``endian``.
        affine: RAS voxel-to-world affine (default 0.8 x 0.8 x 2.5 mm, RAS).
        version: 1 or 2.
        dims: the header's dimensions (x, y, z, ...) if they should differ from the array's.
        qform, sform: whether to set each (code 1) from ``affine``.
        changes: header fields to set last, as stored (``{"scl_slope": np.nan}``).
        extra: bytes appended after the voxels.
    """
    header = (Nifti1Header if version == 1 else Nifti2Header)(endianness=endian)
    values = np.asarray(values_zyx)
    header.set_data_dtype(values.dtype.newbyteorder("="))
    shape = dims if dims is not None else values.shape[::-1]
    header["dim"][0] = len(shape)
    header["dim"][1 : len(shape) + 1] = shape
    affine = np.diag([0.8, 0.8, 2.5, 1.0]) if affine is None else np.asarray(affine, dtype=np.float64)
    header["pixdim"][1:4] = np.linalg.norm(affine[:3, :3], axis=0)
    if sform:
        header.set_sform(affine, code=1)
    if qform:
        header.set_qform(affine, code=1)
    header["vox_offset"] = header.single_vox_offset
    header["scl_slope"], header["scl_inter"] = 1.0, 0.0
    for key, value in (changes or {}).items():
        header[key] = value
    data = values.astype(values.dtype.newbyteorder(endian)).tobytes()
    return header.binaryblock + b"\0" * 4 + data + extra


def write(path: Path, content: bytes, *, compress: bool | None = None) -> Path:
    """Write ``content`` to ``path``, gzip-compressed when the name ends in .gz (or ``compress`` says so)."""
    if compress if compress is not None else path.name.endswith(".gz"):
        content = gzip.compress(content, compresslevel=6, mtime=0)
    path.write_bytes(content)
    return path


def zeros_gzip(count: int) -> bytes:
    """Gzip members that expand to ``count`` zero bytes, built from one 16 MiB member repeated (fast)."""
    block = 1 << 24
    member = gzip.compress(bytes(block), compresslevel=9, mtime=0)
    repeats, rest = divmod(count, block)
    return member * repeats + (gzip.compress(bytes(rest), mtime=0) if rest else b"")


def ct_values(shape_zyx: tuple[int, int, int], dtype: str = "int16") -> np.ndarray:
    """Deterministic CT-like values (-1000 to 1000 HU) of ``shape_zyx`` in ``dtype``."""
    values = (np.arange(math.prod(shape_zyx)).reshape(shape_zyx) * 37 % 2001) - 1000
    return values.astype(dtype)


# --- bad NIfTI files: each builder makes one file in `folder` and returns its path ---


def truncated_nii(folder: Path) -> Path:
    content = nifti_bytes(ct_values((20, 30, 40)))
    return write(folder / "cut.nii", content[: 352 + 31000])


def truncated_nii_gz(folder: Path) -> Path:
    compressed = gzip.compress(nifti_bytes(ct_values((20, 30, 40))), mtime=0)
    return write(folder / "cut.nii.gz", compressed[: len(compressed) * 2 // 3], compress=False)


def corrupt_crc_nii_gz(folder: Path) -> Path:
    compressed = bytearray(gzip.compress(nifti_bytes(ct_values((20, 30, 40))), mtime=0))
    compressed[-8] ^= 0xFF  # the CRC-32 of the trailer
    return write(folder / "crc.nii.gz", bytes(compressed), compress=False)


def header_cut_nii(folder: Path) -> Path:
    return write(folder / "header.nii", nifti_bytes(ct_values((3, 4, 5)))[:200])


def empty_nii_gz(folder: Path) -> Path:
    return write(folder / "empty.nii.gz", b"", compress=False)


def pair_header_as_nii(folder: Path) -> Path:
    return write(folder / "pair.nii", nifti_bytes(ct_values((3, 4, 5)), changes={"magic": b"ni1"}))


def nan_float32_nii(folder: Path) -> Path:
    values = ct_values((5, 6, 7), "float32")
    values[3, 2, 1] = values[4, 5, 6] = values[0, 0, 6] = np.nan
    return write(folder / "nan.nii.gz", nifti_bytes(values))


def inf_float64_nii(folder: Path) -> Path:
    values = ct_values((5, 6, 7), "float64")
    values[1, 1, 1], values[2, 2, 2] = np.inf, -np.inf
    return write(folder / "inf.nii", nifti_bytes(values))


def float64_overflow_nii(folder: Path) -> Path:
    values = ct_values((5, 6, 7), "float64")
    values[2, 3, 4] = 1e300  # finite in float64, infinite as float32
    return write(folder / "huge.nii", nifti_bytes(values))


def nan_slope_nii(folder: Path) -> Path:
    """The issue's file: float voxels of which 1,000 are NaN, scl_slope NaN as some writers leave it."""
    values = ct_values((10, 20, 30), "float32")
    values.reshape(-1)[::6][:1000] = np.nan
    return write(folder / "nan_slope.nii.gz", nifti_bytes(values, changes={"scl_slope": np.nan, "scl_inter": np.nan}))


def slope_overflow_nii(folder: Path) -> Path:
    return write(folder / "slope.nii.gz", nifti_bytes(ct_values((5, 6, 7)), changes={"scl_slope": 1e38}))


def all_inf_nii(folder: Path) -> Path:
    return write(folder / "all_inf.nii.gz", nifti_bytes(np.full((4, 5, 6), np.inf, np.float32)))


def inf_intercept_nii(folder: Path) -> Path:
    changes = {"scl_slope": 2.0, "scl_inter": np.inf}
    return write(folder / "inter.nii.gz", nifti_bytes(ct_values((3, 4, 5)), changes=changes))


def header_bomb_nii(folder: Path) -> Path:
    """1.4 KB file whose header claims 2048x2048x2048 int16 (17.2 GB)."""
    return write(folder / "bomb.nii", nifti_bytes(ct_values((2, 20, 26)), dims=(2048, 2048, 2048)))


def header_bomb_nii_gz(folder: Path) -> Path:
    return write(folder / "bomb.nii.gz", nifti_bytes(ct_values((2, 20, 26)), dims=(2048, 2048, 2048)))


def gzip_bomb_small_claim(folder: Path) -> Path:
    """A 1 MB .nii.gz whose header claims 64^3 int16 (512 KB) but whose stream expands to 1 GB."""
    head = gzip.compress(nifti_bytes(np.zeros((64, 64, 64), np.int16)), mtime=0)
    return write(folder / "gzbomb.nii.gz", head + zeros_gzip(1 << 30), compress=False)


def gzip_bomb_large_claim(folder: Path) -> Path:
    """An 8 MB .nii.gz that truly expands to a 2048^3 uint8 image (8.6 GB, 34 GB as float32)."""
    header = nifti_bytes(np.zeros((1, 1, 1), np.uint8), dims=(2048, 2048, 2048))
    return write(folder / "big.nii.gz", gzip.compress(header, mtime=0) + zeros_gzip(2048**3), compress=False)


def gzip_ending_early_large_claim(folder: Path) -> Path:
    """Claims 512^3 int16 (268 MB); the gzip stream ends after 300 KB of (incompressible) voxel data."""
    content = nifti_bytes(np.zeros((1, 1, 1), np.int16), dims=(512, 512, 512))[:352]
    noise = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    return write(folder / "short.nii.gz", content + noise)


def over_limit_nii(folder: Path) -> Path:
    return write(folder / "ct.nii.gz", nifti_bytes(ct_values((30, 40, 50))))


def image_2d_nii(folder: Path) -> Path:
    return write(folder / "flat.nii.gz", nifti_bytes(ct_values((1, 5, 4)), dims=(4, 5)))


def image_4d_nii(folder: Path) -> Path:
    return write(folder / "time.nii.gz", nifti_bytes(ct_values((2, 3, 5, 4)), dims=(4, 5, 3, 2)))


def vector_5d_nii(folder: Path) -> Path:
    content = nifti_bytes(ct_values((3, 1, 3, 5, 4)), dims=(4, 5, 3, 1, 3), changes={"intent_code": 1007})
    return write(folder / "vector.nii.gz", content)


def single_slice_nii(folder: Path) -> Path:
    return write(folder / "slice.nii.gz", nifti_bytes(ct_values((1, 5, 4))))


def zero_axis_nii(folder: Path) -> Path:
    return write(folder / "zero.nii.gz", nifti_bytes(np.zeros((0, 5, 4), np.int16), dims=(4, 5, 0)))


def negative_axis_nii(folder: Path) -> Path:
    return write(folder / "negative.nii", nifti_bytes(ct_values((3, 5, 4)), dims=(4, -5, 3)))


def sheared_nii(folder: Path) -> Path:
    affine = np.eye(4)
    affine[0, 2] = 0.5  # x moves half a millimetre per slice: voxel axes x and z at 63.4 degrees
    return write(folder / "shear.nii.gz", nifti_bytes(ct_values((7, 6, 5)), affine, qform=False))


def zero_spacing_nii(folder: Path) -> Path:
    affine = np.diag([1.0, 0.0, 1.0, 1.0])
    return write(folder / "flat_voxels.nii.gz", nifti_bytes(ct_values((7, 6, 5)), affine, qform=False))


def absurd_spacing_nii(folder: Path) -> Path:
    affine = np.diag([1.0, 1.0, 1e9, 1.0])
    return write(folder / "far.nii.gz", nifti_bytes(ct_values((7, 6, 5)), affine, qform=False))


def nan_affine_nii(folder: Path) -> Path:
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[1, 3] = np.nan
    return write(folder / "nan_affine.nii.gz", nifti_bytes(ct_values((7, 6, 5)), affine, qform=False))


def complex_nii(folder: Path) -> Path:
    return write(folder / "complex.nii.gz", nifti_bytes(np.zeros((3, 4, 5), np.complex64)))


def rgb_nii(folder: Path) -> Path:
    content = bytearray(nifti_bytes(np.zeros((3, 4, 5, 3), np.uint8), dims=(5, 4, 3)))
    header = Nifti1Header(binaryblock=bytes(content[:348]), check=False)
    header["datatype"], header["bitpix"] = 128, 24  # NIFTI_TYPE_RGB24
    return write(folder / "rgb.nii.gz", header.binaryblock + bytes(content[348:]))


def unknown_datatype_nii(folder: Path) -> Path:
    content = bytearray(nifti_bytes(ct_values((3, 4, 5))))
    header = Nifti1Header(binaryblock=bytes(content[:348]), check=False)
    header["datatype"] = 999
    return write(folder / "datatype.nii", header.binaryblock + bytes(content[348:]))


def low_offset_nii(folder: Path) -> Path:
    return write(folder / "offset.nii", nifti_bytes(ct_values((3, 4, 5)), changes={"vox_offset": 100}))


def far_offset_nii(folder: Path) -> Path:
    return write(folder / "far_offset.nii", nifti_bytes(ct_values((3, 4, 5)), changes={"vox_offset": 1_000_000}))


def no_dimensions_nii(folder: Path) -> Path:
    content = bytearray(nifti_bytes(ct_values((3, 4, 5))))
    header = Nifti1Header(binaryblock=bytes(content[:348]), check=False)
    header["dim"][0] = 0
    return write(folder / "nodims.nii", header.binaryblock + bytes(content[348:]))


def trailing_slices_nii(folder: Path) -> Path:
    """The header says 3 slices; the file holds 10 (a damaged dim[3])."""
    content = nifti_bytes(ct_values((10, 4, 5)), dims=(5, 4, 3))
    return write(folder / "more.nii.gz", content)


def text_as_nii(folder: Path) -> Path:
    return write(folder / "notes.nii", b"Patient scan notes, not an image\n" * 20)


def png_as_nii_gz(folder: Path) -> Path:
    png = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + bytes(17) + zlib.compress(bytes(64))
    return write(folder / "photo.nii.gz", png, compress=False)


def gzipped_text_as_nii_gz(folder: Path) -> Path:
    return write(folder / "notes.nii.gz", b"just some text that was gzipped\n" * 20)


def nrrd_as_nii_gz(folder: Path) -> Path:
    return write(
        folder / "ct.nii.gz", b"NRRD0004\ntype: short\ndimension: 3\nsizes: 2 2 2\n\n" + bytes(16), compress=False
    )


def _qform_only(changes: dict[str, object]) -> bytes:
    """A qform-only NIfTI (sform_code 0) of 7x6x5 voxels, 1.5 x 1.5 x 2 mm, with header fields changed."""
    return nifti_bytes(ct_values((5, 6, 7)), np.diag([1.5, 1.5, 2.0, 1.0]), sform=False, changes=changes)


def _pixdim(index: int, value: float) -> dict[str, object]:
    pixdim = np.array([1.0, 1.5, 1.5, 2.0, 0, 0, 0, 0], np.float32)
    pixdim[index] = value
    return {"pixdim": pixdim}


def qform_nan_pixdim_nii(folder: Path) -> Path:
    return write(folder / "nan_pixdim.nii.gz", _qform_only(_pixdim(2, np.nan)))


def qform_inf_pixdim_nii(folder: Path) -> Path:
    return write(folder / "inf_pixdim.nii.gz", _qform_only(_pixdim(3, np.inf)))


def qform_negative_pixdim_nii(folder: Path) -> Path:
    """ITK flips the y axis of a negative pixdim[2], nibabel takes its absolute value: ambiguous."""
    return write(folder / "negative_pixdim.nii.gz", _qform_only(_pixdim(2, -1.5)))


def qform_zero_pixdim_nii(folder: Path) -> Path:
    return write(folder / "zero_pixdim.nii.gz", _qform_only(_pixdim(1, 0.0)))


def qform_bad_qfac_nii(folder: Path) -> Path:
    return write(folder / "qfac.nii.gz", _qform_only(_pixdim(0, -0.5)))


def qform_non_unit_quaternion_nii(folder: Path) -> Path:
    """b^2 + c^2 + d^2 = 1.62: ITK rescales the quaternion, nibabel refuses it."""
    return write(folder / "quaternion.nii.gz", _qform_only({"quatern_b": 0.9, "quatern_c": 0.9, "quatern_d": 0.0}))


def units_meter_nii(folder: Path) -> Path:
    """xyzt_units metres: ITK scales the grid by 1000, nibabel does not."""
    affine = np.diag([0.0015, 0.0015, 0.002, 1.0])
    return write(folder / "metres.nii.gz", nifti_bytes(ct_values((5, 6, 7)), affine, changes={"xyzt_units": 1}))


def units_micron_nii(folder: Path) -> Path:
    return write(folder / "microns.nii.gz", nifti_bytes(ct_values((5, 6, 7)), changes={"xyzt_units": 3 | 8}))


def label_intent_nii(folder: Path) -> Path:
    content = nifti_bytes(ct_values((5, 6, 7)) % 14, changes={"intent_code": 1002})
    return write(folder / "labels.nii.gz", content)


def binary_datatype_nii(folder: Path) -> Path:
    """DT_BINARY (1 bit per voxel), which nibabel reads as opaque bytes."""
    content = nifti_bytes(np.zeros((4, 6, 8), np.uint8))
    header = Nifti1Header(binaryblock=content[:348], check=False)
    header["datatype"], header["bitpix"] = 1, 1
    return write(folder / "bits.nii.gz", header.binaryblock + content[348 : 352 + 4 * 6 * 8 // 8])


def nifti2_magic_in_nifti1_nii(folder: Path) -> Path:
    return write(folder / "magic.nii", nifti_bytes(ct_values((3, 4, 5)), changes={"magic": b"n+2"}))
