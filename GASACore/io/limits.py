"""How much memory one input image may take, and the checks that refuse a header's claims before allocating.

Every reader asks two questions of a header before it allocates a single voxel:

1. can the file hold what the header claims? (``check_data_fits``: file size minus header for raw data, at most
   1032 x the compressed size for deflate streams, the data files' sizes for detached headers)
2. does the float32 array the reader returns fit the memory limit? (``check_image_size``)

The limit defaults to a quarter of the machine's physical memory (or of the container's memory limit, when lower)
for the float32 (z, y, x) array that :func:`GASACore.io.read_image` returns; the pipeline needs a few times that on
top, so a quarter keeps a full run within memory. ``GASA_MAX_IMAGE_BYTES`` (``8GB``, ``500MiB``, ``2000000000``)
or the ``max_bytes`` argument of ``read_image`` overrides it.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from GASACore.errors import DamagedFileError, ImageTooLargeError, InputError

__all__ = [
    "DEFLATE_MAX_RATIO",
    "MAX_IMAGE_BYTES_ENV",
    "check_data_fits",
    "check_image_size",
    "default_max_image_bytes",
    "format_bytes",
    "max_image_bytes",
    "parse_byte_size",
    "physical_memory_bytes",
]

logger = logging.getLogger(__name__)

#: Environment variable that sets the largest float32 image (bytes) a reader accepts.
MAX_IMAGE_BYTES_ENV = "GASA_MAX_IMAGE_BYTES"
#: Deflate (gzip, zlib) expands its input at most ~1032 times: a bound on what a compressed file can hold.
DEFLATE_MAX_RATIO = 1032
#: Used when the machine's memory cannot be determined.
_FALLBACK_LIMIT = 4 * 1000**3

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def format_bytes(count: int | float) -> str:
    """Bytes as a short decimal figure.

    Examples:
        >>> format_bytes(17179869184), format_bytes(1400), format_bytes(512)
        ('17.2 GB', '1.4 KB', '512 bytes')
    """
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{int(count)} bytes"


def parse_byte_size(text: str) -> int:
    """A byte count from ``"8GB"``, ``"1.5 GiB"``, ``"500M"`` or ``"2000000000"`` (decimal units; ``Ki``... binary).

    Examples:
        >>> parse_byte_size("8GB"), parse_byte_size("1 GiB"), parse_byte_size("1500")
        (8000000000, 1073741824, 1500)

    Raises:
        ValueError: not a positive number with an optional unit.
    """
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"a byte size must be a number with an optional unit (8GB, 500MiB, 2000000000), got {text!r}")
    value = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"a byte size must be at least 1 byte, got {text!r}")
    return int(value)


def _cgroup_limit() -> int | None:
    """The container's memory limit (cgroup v2 or v1), None when there is none."""
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def _windows_memory() -> int | None:
    class MemoryStatus(ctypes.Structure):
        _fields_ = [
            ("dwLength", ctypes.c_ulong),
            ("dwMemoryLoad", ctypes.c_ulong),
            ("ullTotalPhys", ctypes.c_ulonglong),
            ("ullAvailPhys", ctypes.c_ulonglong),
            ("ullTotalPageFile", ctypes.c_ulonglong),
            ("ullAvailPageFile", ctypes.c_ulonglong),
            ("ullTotalVirtual", ctypes.c_ulonglong),
            ("ullAvailVirtual", ctypes.c_ulonglong),
            ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
        ]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return None
    return int(status.ullTotalPhys)


def physical_memory_bytes() -> int | None:
    """The machine's physical memory in bytes, lowered to the container's limit when there is one; None if unknown."""
    total: int | None = None
    try:
        if sys.platform == "win32":
            total = _windows_memory()
        else:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        total = None
    container = _cgroup_limit()
    if container is not None and (total is None or container < total):
        total = container
    return total if total and total > 0 else None


def default_max_image_bytes() -> int:
    """A quarter of :func:`physical_memory_bytes` (4 GB when it is unknown)."""
    total = physical_memory_bytes()
    return total // 4 if total else _FALLBACK_LIMIT


def max_image_bytes(override: int | None = None) -> int:
    """The largest float32 image (bytes) a reader accepts: ``override``, else ``GASA_MAX_IMAGE_BYTES``, else default.

    Raises:
        InputError: ``override`` is not a positive integer, or the environment variable is not a byte size.
    """
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, int) or override < 1:
            raise InputError(f"max_bytes must be a positive number of bytes, got {override!r}")
        return override
    text = os.environ.get(MAX_IMAGE_BYTES_ENV, "").strip()
    if not text:
        return default_max_image_bytes()
    try:
        return parse_byte_size(text)
    except ValueError as err:
        raise InputError(f"{MAX_IMAGE_BYTES_ENV} must be a byte size such as 8GB or 2000000000, got {text!r}") from err


def _claim(size: Sequence[int], dtype: str, itemsize: int) -> tuple[str, int]:
    dims = "x".join(str(int(v)) for v in size)
    stored = math.prod(int(v) for v in size) * itemsize
    return f"{dims} {dtype}", stored


def _bytes_and_size(count: int) -> str:
    return f"{count} bytes" if count < 1000 else f"{count} bytes ({format_bytes(count)})"


def check_image_size(source: Path | str, size: Sequence[int], dtype: str, itemsize: int, *, limit: int) -> None:
    """Refuse an image whose float32 array would exceed ``limit`` bytes.

    Args:
        source: the file, for the message.
        size: voxels per axis as the header gives them (x, y, z[, ...]).
        dtype: the stored data type's short name (``"int16"``), for the message.
        itemsize: bytes per stored voxel.
        limit: the largest float32 array accepted, in bytes (:func:`max_image_bytes`).

    Raises:
        ImageTooLargeError: naming the claimed size, its float32 size and the limit.
    """
    claim, stored = _claim(size, dtype, itemsize)
    as_float32 = math.prod(int(v) for v in size) * 4
    if as_float32 > limit:
        raise ImageTooLargeError(
            f"expected an image of at most {format_bytes(limit)} as float32 (the limit for one image), but the "
            f"header of {source} claims {claim} voxels = {format_bytes(stored)} stored, {format_bytes(as_float32)} "
            f"as float32, which exceeds the limit of {format_bytes(limit)}; set {MAX_IMAGE_BYTES_ENV} to raise it"
        )


def check_data_fits(
    source: Path | str,
    size: Sequence[int],
    dtype: str,
    itemsize: int,
    available: int,
    *,
    detail: str = "",
) -> None:
    """Refuse a header that claims more voxel bytes than ``available``.

    Args:
        source: the file, for the message.
        size: voxels per axis as the header gives them (x, y, z[, ...]).
        dtype: the stored data type's short name, for the message.
        itemsize: bytes per stored voxel.
        available: bytes of voxel data the file holds (or at most can hold, for compressed data).
        detail: how ``available`` was found, appended to the message (e.g. ``" (the gzip stream ended early)"``).

    Raises:
        DamagedFileError: ``expected N bytes of voxel data ..., found M ...: the file is cut short``.
    """
    claim, stored = _claim(size, dtype, itemsize)
    if stored > available:
        raise DamagedFileError(
            f"expected {stored} bytes of voxel data in {source} (its header claims {claim} = {format_bytes(stored)}), "
            f"found {_bytes_and_size(available)}{detail}: the file is cut short or its header is damaged"
        )
