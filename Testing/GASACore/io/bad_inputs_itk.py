"""Builders of bad NRRD and MetaImage (.mha, .mhd + .raw) inputs for the bad-input set, written as text headers."""

from __future__ import annotations

import bz2
import gzip
import os
import zlib
from pathlib import Path

import numpy as np
from bad_inputs_nifti import ct_values

_VALUES = ct_values((20, 30, 40))  # 40x30x20 int16 = 48,000 bytes
_DATA = _VALUES.tobytes()


def nrrd_header(*, sizes: str = "40 30 20", encoding: str = "raw", extra: str = "", kind: str = "short") -> str:
    """A NRRD0004 header (without its closing blank line)."""
    directions = "(0.8,0,0) (0,0.8,0) (0,0,2.5)" if extra.find("space directions") < 0 else ""
    lines = [
        "NRRD0004",
        f"type: {kind}",
        f"dimension: {len(sizes.split())}",
        "space: left-posterior-superior",
        f"sizes: {sizes}",
        f"space directions: {directions}" if directions else "",
        "endian: little",
        f"encoding: {encoding}",
        "space origin: (10,-20,30)",
        extra,
    ]
    return "\n".join(line for line in lines if line) + "\n"


def mha_header(
    *, dims: str = "40 30 20", data_file: str = "LOCAL", extra: str = "", spacing: str = "0.8 0.8 2.5"
) -> str:
    """A MetaImage header ending with its ElementDataFile line."""
    lines = [
        "ObjectType = Image",
        f"NDims = {len(dims.split())}",
        "BinaryData = True",
        "BinaryDataByteOrderMSB = False",
        extra,
        "TransformMatrix = 1 0 0 0 1 0 0 0 1" if "TransformMatrix" not in extra else "",
        "Offset = 10 -20 30",
        f"ElementSpacing = {spacing}",
        f"DimSize = {dims}",
        "ElementType = MET_SHORT",
        f"ElementDataFile = {data_file}",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _write(path: Path, header: str, data: bytes = b"") -> Path:
    path.write_bytes(header.encode("ascii") + data)
    return path


# --- NRRD ---


def nrrd_truncated(folder: Path) -> Path:
    return _write(folder / "cut.nrrd", nrrd_header() + "\n", _DATA[:30000])


def nrrd_gzip_truncated(folder: Path) -> Path:
    data = gzip.compress(_DATA, mtime=0)
    return _write(folder / "cut_gz.nrrd", nrrd_header(encoding="gzip") + "\n", data[: len(data) // 2])


def nrrd_gzip_corrupt(folder: Path) -> Path:
    data = bytearray(gzip.compress(_DATA, mtime=0))
    data[-8] ^= 0xFF
    return _write(folder / "crc.nrrd", nrrd_header(encoding="gzip") + "\n", bytes(data))


def nrrd_bzip2_truncated(folder: Path) -> Path:
    data = bz2.compress(_DATA)
    return _write(folder / "cut_bz2.nrrd", nrrd_header(encoding="bzip2") + "\n", data[: len(data) // 2])


def nrrd_detached_short(folder: Path) -> Path:
    (folder / "ct.raw").write_bytes(_DATA[:1000])
    return _write(folder / "ct.nrrd", nrrd_header(extra="data file: ct.raw"))


def nrrd_detached_missing(folder: Path) -> Path:
    return _write(folder / "ct.nrrd", nrrd_header(extra="data file: gone.raw"))


def nrrd_data_file_climbs_out(folder: Path) -> Path:
    (folder / "inner").mkdir()
    (folder / "secret.raw").write_bytes(_DATA)
    return _write(folder / "inner" / "ct.nrrd", nrrd_header(extra="data file: ../secret.raw"))


def nrrd_data_file_absolute(folder: Path) -> Path:
    return _write(folder / "ct.nrrd", nrrd_header(extra="data file: /dev/zero"))


def nrrd_data_list_outside(folder: Path) -> Path:
    for number in range(2):
        (folder / f"part{number}.raw").write_bytes(_DATA[:24000])
    return _write(folder / "ct.nrrd", nrrd_header(extra="data file: LIST\npart0.raw\n../../part1.raw"))


def nrrd_header_bomb(folder: Path) -> Path:
    return _write(folder / "bomb.nrrd", nrrd_header(sizes="2048 2048 2048") + "\n", _DATA[:1000])


def nrrd_ascii_short(folder: Path) -> Path:
    numbers = " ".join(str(v) for v in _VALUES.reshape(-1)[:5000])
    return _write(folder / "text.nrrd", nrrd_header(encoding="ascii") + "\n" + numbers + "\n")


def nrrd_without_data(folder: Path) -> Path:
    return _write(folder / "nodata.nrrd", nrrd_header())


def nrrd_unknown_encoding(folder: Path) -> Path:
    return _write(folder / "odd.nrrd", nrrd_header(encoding="zstd") + "\n", _DATA)


def nrrd_4d(folder: Path) -> Path:
    header = "NRRD0004\ntype: short\ndimension: 4\nsizes: 4 5 3 2\nspacings: 1 1 1 1\nencoding: raw\nendian: little\n"
    return _write(folder / "time.nrrd", header + "\n", bytes(240))


def nrrd_sheared(folder: Path) -> Path:
    header = nrrd_header(extra="space directions: (1,0,0) (0,1,0) (0.5,0,1)")
    return _write(folder / "shear.nrrd", header + "\n", _DATA)


def nrrd_huge_spacing(folder: Path) -> Path:
    header = nrrd_header(extra="space directions: (1,0,0) (0,1,0) (0,0,1000000000)")
    return _write(folder / "far.nrrd", header + "\n", _DATA)


def nrrd_nan_float(folder: Path) -> Path:
    values = _VALUES.astype(np.float32)
    values[5, 6, 7] = np.nan
    return _write(folder / "nan.nrrd", nrrd_header(kind="float") + "\n", values.tobytes())


def nrrd_long_header(folder: Path) -> Path:
    return _write(folder / "long.nrrd", nrrd_header() + "# comment\n" * 120_000)


def text_as_nrrd(folder: Path) -> Path:
    return _write(folder / "notes.nrrd", "not a NRRD file at all\n")


# --- MetaImage ---


def mha_truncated(folder: Path) -> Path:
    return _write(folder / "cut.mha", mha_header(), _DATA[:30000])


def mha_compressed_truncated(folder: Path) -> Path:
    data = zlib.compress(_DATA)
    header = mha_header(extra=f"CompressedData = True\nCompressedDataSize = {len(data)}")
    return _write(folder / "cut_z.mha", header, data[: len(data) // 2])


def mha_compressed_short_stream(folder: Path) -> Path:
    """Honest CompressedDataSize, but the zlib stream expands to half the voxels the header claims."""
    data = zlib.compress(_DATA[:24000])
    header = mha_header(extra=f"CompressedData = True\nCompressedDataSize = {len(data)}")
    return _write(folder / "short_z.mha", header, data)


def mha_compressed_short_large_claim(folder: Path) -> Path:
    """Claims 512^3 int16 (268 MB); the zlib stream holds 300 KB of (incompressible) data."""
    data = zlib.compress(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes())
    header = mha_header(dims="512 512 512", extra=f"CompressedData = True\nCompressedDataSize = {len(data)}")
    return _write(folder / "short_big.mha", header, data)


def mha_compressed_bomb(folder: Path) -> Path:
    data = zlib.compress(bytes(100))
    header = mha_header(dims="2048 2048 2048", extra=f"CompressedData = True\nCompressedDataSize = {len(data)}")
    return _write(folder / "bomb_z.mha", header, data)


def mha_header_bomb(folder: Path) -> Path:
    return _write(folder / "bomb.mha", mha_header(dims="2048 2048 2048"), _DATA[:1000])


def mhd_raw_short(folder: Path) -> Path:
    (folder / "ct.raw").write_bytes(_DATA[:1000])
    return _write(folder / "ct.mhd", mha_header(data_file="ct.raw"))


def mhd_raw_missing(folder: Path) -> Path:
    return _write(folder / "ct.mhd", mha_header(data_file="ct.raw"))


def mhd_climbs_out(folder: Path) -> Path:
    return _write(folder / "ct.mhd", mha_header(data_file="../../../../../../etc/passwd"))


def mhd_absolute(folder: Path) -> Path:
    return _write(folder / "ct.mhd", mha_header(data_file="/etc/passwd"))


def mhd_link_out(folder: Path) -> Path:
    os.symlink("/dev/zero", folder / "ct.raw")
    return _write(folder / "ct.mhd", mha_header(data_file="ct.raw"))


def mhd_pattern_out(folder: Path) -> Path:
    return _write(folder / "ct.mhd", mha_header(data_file="../slice%03d.raw 1 20 1"))


def mhd_list_out(folder: Path) -> Path:
    (folder / "a.raw").write_bytes(_DATA[:24000])
    return _write(folder / "ct.mhd", mha_header(data_file="LIST 2D") + "a.raw\n/etc/hostname\n")


def mhd_pattern_bomb(folder: Path) -> Path:
    return _write(folder / "ct.mhd", mha_header(data_file="slice%d.raw 1 1000000000 1"))


def mha_no_data_line(folder: Path) -> Path:
    return _write(folder / "nodata.mha", mha_header().replace("ElementDataFile = LOCAL\n", ""))


def mha_zero_spacing(folder: Path) -> Path:
    return _write(folder / "flat.mha", mha_header(spacing="0.8 0 2.5"), _DATA)


def mha_sheared(folder: Path) -> Path:
    return _write(folder / "shear.mha", mha_header(extra="TransformMatrix = 1 0 0 0 1 0 0.5 0 1"), _DATA)


def mha_2d(folder: Path) -> Path:
    header = "ObjectType = Image\nNDims = 2\nDimSize = 40 30\nElementType = MET_SHORT\nElementDataFile = LOCAL\n"
    return _write(folder / "flat2d.mha", header, _DATA[:2400])


def text_as_mha(folder: Path) -> Path:
    return _write(folder / "notes.mha", "Some notes about the patient\n")


def mha_dims_text(folder: Path) -> Path:
    """MetaIO reads 'abc' as nothing and fails with 'Reason: Success' (and prints to stderr)."""
    return _write(folder / "text_dims.mha", mha_header(dims="40 abc 20"), _DATA)


def mha_dims_negative(folder: Path) -> Path:
    """MetaIO reads -30 as 4294967266."""
    return _write(folder / "negative_dims.mha", mha_header(dims="40 -30 20"), _DATA)


def mha_nan_spacing(folder: Path) -> Path:
    """MetaIO reads 'nan' and what follows it as 0."""
    return _write(folder / "nan_spacing.mha", mha_header(spacing="0.8 nan 2.5"), _DATA)


def mha_unknown_type(folder: Path) -> Path:
    return _write(folder / "type.mha", mha_header().replace("MET_SHORT", "MET_HALF"), _DATA)


def mhd_data_file_folder(folder: Path) -> Path:
    (folder / "ct.raw").mkdir()
    return _write(folder / "ct.mhd", mha_header(data_file="ct.raw"))


def mhd_data_file_dot(folder: Path) -> Path:
    return _write(folder / "ct.mhd", mha_header(data_file="."))


def nrrd_data_file_fifo(folder: Path) -> Path:
    """A named pipe as data file would block the reader forever."""
    os.mkfifo(folder / "ct.raw")
    return _write(folder / "ct.nrrd", nrrd_header(extra="data file: ct.raw"))


def nrrd_two_domain_axes(folder: Path) -> Path:
    """kinds make one of 3 axes a list: ITK's message names its own object address."""
    return _write(folder / "kinds.nrrd", nrrd_header(extra="kinds: domain domain list") + "\n", _DATA)


def mha_compressed_no_size(folder: Path) -> Path:
    """Inline zlib data without CompressedDataSize: MetaIO prints 'Uncompress failed' and returns other values."""
    return _write(folder / "no_size.mha", mha_header(extra="CompressedData = True"), zlib.compress(_DATA))
