"""Reading a safetensors file's header and checking it against the file before any tensor is loaded.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
byte range, then the tensor bytes. :func:`read_safetensors_header` checks every claim of the header against the
file's size (a header claiming 100 GB in a 1 KB file is refused naming both numbers) so that loading allocates
only what the file holds, and returns the shapes so that they are matched to the network before loading.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from GASACore.bundle.jsonfile import check_json_depth
from GASACore.errors import ModelError
from GASACore.io.limits import format_bytes

__all__ = ["DTYPE_BYTES", "MAX_HEADER_BYTES", "TensorInfo", "read_safetensors_header"]

#: Bytes per element of each safetensors dtype.
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
#: Largest header read (the safetensors library's own limit).
MAX_HEADER_BYTES = 100 * 1000**2


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header describes it."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _fail(path: Path, text: str) -> ModelError:
    return ModelError(f"weight file {path} is not a valid safetensors file: {text}")


def read_safetensors_header(path: Path) -> dict[str, TensorInfo]:
    """The tensors a safetensors file holds, every claim checked against the file's size.

    Raises:
        ModelError: a header length beyond the file or 100 MB, a header that is not a JSON object of tensors,
            an unknown dtype, a negative or non-integer shape, byte ranges that do not match dtype x shape,
            overlap or lie beyond the file; one line naming what was expected and what was found.
    """
    path = Path(path)
    try:
        with path.open("rb") as stream:
            size = path.stat().st_size
            prefix = stream.read(8)
            if len(prefix) < 8:
                raise _fail(path, f"expected at least 8 bytes (the header length), found {len(prefix)}")
            (length,) = struct.unpack("<Q", prefix)
            if length > min(size - 8, MAX_HEADER_BYTES):
                raise _fail(
                    path,
                    f"its header claims {length:,} bytes ({format_bytes(length)}) but the file holds {size:,} bytes "
                    f"({format_bytes(size)}) in all (headers are at most {format_bytes(MAX_HEADER_BYTES)})",
                )
            raw = stream.read(length)
    except OSError as err:
        raise ModelError(f"cannot read weight file {path}: {err}") from err
    try:
        text = raw.decode("utf-8")
        check_json_depth(text, f"safetensors header of {path}")
        header = json.loads(text)
    except ModelError:
        raise
    except ValueError as err:
        raise _fail(path, f"expected a JSON header, found unreadable data ({err})") from err
    if not isinstance(header, dict):
        raise _fail(path, f"expected a JSON object as header, found {type(header).__name__}")
    return _tensors(path, header, size - 8 - length)


def _tensors(path: Path, header: dict, data_bytes: int) -> dict[str, TensorInfo]:
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise _fail(path, f"tensor {name!r}: expected an object with dtype, shape, data_offsets, found {entry!r}")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPE_BYTES:
            raise _fail(path, f"tensor {name!r}: expected a dtype among {sorted(DTYPE_BYTES)}, found {dtype!r}")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise _fail(path, f"tensor {name!r}: expected a shape of non-negative integers, found {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]
        ):
            raise _fail(
                path, f"tensor {name!r}: expected data_offsets [begin, end] with 0 <= begin <= end, found {offsets!r}"
            )
        need = math.prod(shape) * DTYPE_BYTES[dtype]
        begin, end = offsets
        if end - begin != need:
            raise _fail(
                path,
                f"tensor {name!r} of shape {tuple(shape)} {dtype} needs {need:,} bytes ({format_bytes(need)}), "
                f"its data_offsets span {end - begin:,}",
            )
        if end > data_bytes:
            raise _fail(
                path,
                f"tensor {name!r} claims bytes {begin:,}..{end:,} ({format_bytes(end)}) but the file holds "
                f"{data_bytes:,} bytes ({format_bytes(data_bytes)}) of tensor data",
            )
        tensors[name] = TensorInfo(dtype, tuple(shape), begin, end)
    spans = sorted((info.begin, info.end, name) for name, info in tensors.items() if info.end > info.begin)
    for (_, first_end, first), (second_begin, _, second) in pairwise(spans):
        if second_begin < first_end:
            raise _fail(path, f"tensors {first!r} and {second!r} overlap: expected disjoint byte ranges")
    return tensors
