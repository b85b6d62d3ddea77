"""The most a model file may claim: JSON size and nesting, zip members, sizes and compression ratios.

Every model reader checks a file against these limits before it allocates what the file claims, as the image
readers do with ``GASACore.io.limits``. Each limit has a default that fits every real model with room and an
environment variable that raises or lowers it:

================================  ==========================  ========================================
limit                             environment variable        default
================================  ==========================  ========================================
bytes of one JSON file            ``GASA_MAX_MODEL_JSON_BYTES``  8 MB
members of one zip                ``GASA_MAX_ZIP_MEMBERS``    10,000
bytes a zip unpacks to            ``GASA_MAX_ZIP_BYTES``      16 GiB
unpacked / packed size of one     ``GASA_MAX_ZIP_RATIO``      200 (deflate reaches ~1032 on zeros;
member (members above 1 MiB)                                  weights compress less than 2x)
================================  ==========================  ========================================
"""

from __future__ import annotations

import math
import os

from GASACore.errors import ModelError
from GASACore.io.limits import parse_byte_size

__all__ = [
    "MAX_JSON_BYTES_ENV",
    "MAX_JSON_DEPTH",
    "MAX_ZIP_BYTES_ENV",
    "MAX_ZIP_MEMBERS_ENV",
    "MAX_ZIP_RATIO_ENV",
    "RATIO_CHECK_MIN_BYTES",
    "max_json_bytes",
    "max_zip_bytes",
    "max_zip_members",
    "max_zip_ratio",
]

MAX_JSON_BYTES_ENV = "GASA_MAX_MODEL_JSON_BYTES"
MAX_ZIP_MEMBERS_ENV = "GASA_MAX_ZIP_MEMBERS"
MAX_ZIP_BYTES_ENV = "GASA_MAX_ZIP_BYTES"
MAX_ZIP_RATIO_ENV = "GASA_MAX_ZIP_RATIO"

#: Deepest nesting of objects and arrays in a model's JSON (model.json nests 4 levels, nnU-Net plans 6).
MAX_JSON_DEPTH = 64
#: Members smaller than this are not ratio-checked (a small all-zero tensor compresses 1000x, harmlessly).
RATIO_CHECK_MIN_BYTES = 1 << 20

_DEFAULT_JSON_BYTES = 8 * 1000**2
_DEFAULT_ZIP_MEMBERS = 10_000
_DEFAULT_ZIP_BYTES = 16 << 30
_DEFAULT_ZIP_RATIO = 200.0


def _env_bytes(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return parse_byte_size(text)
    except ValueError as err:
        raise ModelError(f"{name} must be a byte size such as 8MB or 2000000000, got {text!r}") from err


def _env_number(name: str, default: float, *, integer: bool) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = -1
    if not math.isfinite(value) or value < 1:
        kind = "a whole number" if integer else "a number"
        raise ModelError(f"{name} must be {kind} of at least 1, got {text!r}")
    return value


def max_json_bytes() -> int:
    """The largest model JSON file read (``GASA_MAX_MODEL_JSON_BYTES``, default 8 MB)."""
    return _env_bytes(MAX_JSON_BYTES_ENV, _DEFAULT_JSON_BYTES)


def max_zip_members() -> int:
    """The most members a zipped bundle or checkpoint may hold (``GASA_MAX_ZIP_MEMBERS``, default 10,000)."""
    return int(_env_number(MAX_ZIP_MEMBERS_ENV, _DEFAULT_ZIP_MEMBERS, integer=True))


def max_zip_bytes() -> int:
    """The most bytes a zipped bundle or checkpoint may unpack to (``GASA_MAX_ZIP_BYTES``, default 16 GiB)."""
    return _env_bytes(MAX_ZIP_BYTES_ENV, _DEFAULT_ZIP_BYTES)


def max_zip_ratio() -> float:
    """The largest unpacked / packed size of one zip member above 1 MiB (``GASA_MAX_ZIP_RATIO``, default 200)."""
    return float(_env_number(MAX_ZIP_RATIO_ENV, _DEFAULT_ZIP_RATIO, integer=False))
