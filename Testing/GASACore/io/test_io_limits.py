"""The memory limit for one image and the byte-size helpers behind it; bounded streams."""

from __future__ import annotations

import bz2
import gzip
import io
from pathlib import Path

import numpy as np
import pytest

from GASACore.errors import DamagedFileError, ImageTooLargeError, InputError
from GASACore.io import read_image
from GASACore.io.limits import (
    MAX_IMAGE_BYTES_ENV,
    check_data_fits,
    check_image_size,
    default_max_image_bytes,
    format_bytes,
    max_image_bytes,
    parse_byte_size,
    physical_memory_bytes,
)
from GASACore.io.stream import StreamError, VoxelStream


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("8GB", 8_000_000_000),
        ("1.5 GiB", 1_610_612_736),
        ("500M", 500_000_000),
        ("2000000000", 2_000_000_000),
        ("64kib", 65_536),
        ("1e9", 1_000_000_000),
    ],
)
def test_parse_byte_size(text: str, count: int) -> None:
    assert parse_byte_size(text) == count


@pytest.mark.parametrize("text", ["", "eight GB", "8 GBB", "-5", "0", "inf"])
def test_parse_byte_size_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="byte size must"):
        parse_byte_size(text)


def test_format_bytes() -> None:
    assert [format_bytes(v) for v in (999, 1400, 17_179_869_184, 6e9, 2.5e12)] == [
        "999 bytes",
        "1.4 KB",
        "17.2 GB",
        "6.0 GB",
        "2.5 TB",
    ]


def test_the_default_limit_is_a_quarter_of_the_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_IMAGE_BYTES_ENV, raising=False)
    memory = physical_memory_bytes()
    assert memory is not None and memory > 2**30
    assert default_max_image_bytes() == memory // 4 == max_image_bytes()


def test_the_environment_and_the_argument_override_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_IMAGE_BYTES_ENV, "2GB")
    assert max_image_bytes() == 2_000_000_000
    assert max_image_bytes(12345) == 12345
    monkeypatch.setenv(MAX_IMAGE_BYTES_ENV, "lots")
    with pytest.raises(InputError, match=r"GASA_MAX_IMAGE_BYTES must be a byte size such as 8GB .* got 'lots'"):
        max_image_bytes()
    with pytest.raises(InputError, match=r"max_bytes must be a positive number of bytes, got 0"):
        max_image_bytes(0)


def test_the_limit_is_inclusive() -> None:
    check_image_size("ct.nii", (10, 10, 10), "int16", 2, limit=4000)
    with pytest.raises(ImageTooLargeError, match=r"10x10x11 int16 voxels = 2.2 KB stored, 4.4 KB as float32"):
        check_image_size("ct.nii", (10, 10, 11), "int16", 2, limit=4000)
    check_data_fits("ct.nii", (10, 10, 10), "int16", 2, 2000)
    with pytest.raises(DamagedFileError, match=r"expected 2000 bytes .* found 1999 bytes \(2.0 KB\): the file is cut"):
        check_data_fits("ct.nii", (10, 10, 10), "int16", 2, 1999)


def test_read_image_applies_max_bytes_to_the_real_ct(example_ct: Path) -> None:
    exact = 122 * 101 * 112 * 4
    assert read_image(example_ct, max_bytes=exact).geometry.size == (122, 101, 112)
    with pytest.raises(ImageTooLargeError, match=r"122x101x112 int32 voxels = 5.5 MB stored, 5.5 MB as float32"):
        read_image(example_ct, max_bytes=exact - 1)


def test_dicom_folders_obey_max_bytes(dicom_folder: Path) -> None:
    with pytest.raises(ImageTooLargeError, match=r"512x512x20 int16"):
        read_image(dicom_folder, max_bytes=512 * 512 * 20 * 4 - 1)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("raw", bytes), ("gzip", lambda data: gzip.compress(data, mtime=0)), ("bzip2", bz2.compress)],
)
def test_a_stream_reads_exactly_and_tells_a_cut_from_an_end(encoding: str, compress) -> None:  # type: ignore[no-untyped-def]
    data = np.random.default_rng(1).integers(0, 256, 2_500_000, dtype=np.uint8).tobytes()
    stream = VoxelStream(io.BytesIO(compress(data)), encoding)
    assert stream.read(10) == data[:10]
    target = np.empty(len(data) - 10, np.uint8)
    assert stream.readinto(memoryview(target)) == len(target) and target.tobytes() == data[10:]
    assert stream.skip(100) == 0  # the end, not an error
    if encoding != "raw":
        whole = compress(data)
        cut = VoxelStream(io.BytesIO(whole[: len(whole) * 6 // 10]), encoding)
        with pytest.raises(StreamError, match=f"the {encoding} stream ended early") as error:
            cut.skip(len(data))
        assert error.value.truncated and 0 < cut.position < len(data)
