"""Host memory settings for CPU inference, applied by ``gasa-segment`` before torch loads. Imports neither torch
nor numpy.

PyTorch's CPU tensors come from glibc's ``malloc``. By default glibc serves a block above its mmap threshold
with a fresh ``mmap`` and returns it on ``free``, raises that threshold after such a free (up to 32 MiB) and
trims the heap top when much is free. A sliding-window prediction allocates and frees the same 4-50 MB
activations in every window, so some of them are faulted in again, 4 KiB page by page, in every window,
while the heap keeps others at their largest: on the small nnU-Net model (``bench/window_forward_bench.py``)
one window's forward pass peaks ~120 MB above the memory it uses, and page faults cost 10-15% of its CPU time.

:func:`apply_malloc_defaults` maps every block from 4 MiB up on its own (``mallopt(M_MMAP_THRESHOLD)``, fixed:
a freed activation goes back to the system at once, so the peak follows what is in use) and sets PyTorch's
``THP_MEM_ALLOC_ENABLE=1``, which backs such blocks with 2 MiB transparent huge pages (one page fault per
2 MiB instead of 512). Only where that works: glibc, Linux with transparent huge pages not ``never``, and
torch not imported yet. A user who set ``MALLOC_*`` variables, ``glibc.malloc`` tunables or
``THP_MEM_ALLOC_ENABLE`` keeps them; ``GASA_MALLOC_TUNING=0`` turns this off. :func:`release_free_memory`
(``malloc_trim``) hands the heap's free pages back between pipeline stages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

__all__ = [
    "MMAP_THRESHOLD",
    "apply_malloc_defaults",
    "glibc",
    "huge_pages_available",
    "malloc_tuning_wanted",
    "release_free_memory",
]

logger = logging.getLogger(__name__)

#: Blocks from this size up are mapped on their own (glibc ``M_MMAP_THRESHOLD``; fixed, not adaptive).
MMAP_THRESHOLD = 4 << 20
_M_MMAP_THRESHOLD = -3
#: Environment variables by which a user already chose how host memory is allocated.
USER_MALLOC_SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_ARENA_MAX",
    "THP_MEM_ALLOC_ENABLE",
)
#: Opt-out switch: ``0`` keeps glibc's and PyTorch's own behaviour.
SWITCH = "GASA_MALLOC_TUNING"
_THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")

_GLIBC: list[ctypes.CDLL | None] = []


def glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else ``None``."""
    if not _GLIBC:
        try:
            library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            library.gnu_get_libc_version  # noqa: B018 - glibc only: AttributeError elsewhere
            library.mallopt.argtypes, library.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
            _GLIBC.append(library)
        except (OSError, AttributeError):
            _GLIBC.append(None)
    return _GLIBC[0]


def huge_pages_available(setting: Path = _THP_SETTING) -> bool:
    """Whether the kernel gives transparent huge pages to regions that ask (its mode is not ``[never]``)."""
    try:
        return "[never]" not in setting.read_text()
    except OSError:
        return False


def malloc_tuning_wanted(environ: Mapping[str, str]) -> bool:
    """Whether to tune: not switched off, and no allocation setting of the user's own.

    Examples:
        >>> malloc_tuning_wanted({})
        True
        >>> malloc_tuning_wanted({"MALLOC_ARENA_MAX": "2"}), malloc_tuning_wanted({"GASA_MALLOC_TUNING": "0"})
        (False, False)
    """
    if environ.get(SWITCH, "1").strip() == "0" or "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return False
    return not any(name in environ for name in USER_MALLOC_SETTINGS)


def apply_malloc_defaults(environ: MutableMapping[str, str] | None = None) -> bool:
    """Map blocks from :data:`MMAP_THRESHOLD` up on huge pages, where :func:`malloc_tuning_wanted` and it works.

    Returns:
        Whether the settings were applied (``False``: not wanted, not glibc, no transparent huge pages, or
        torch already imported, which is logged).
    """
    target = os.environ if environ is None else environ
    library = glibc()
    if library is None or not huge_pages_available() or not malloc_tuning_wanted(target):
        return False
    if "torch" in sys.modules:
        logger.debug("torch is already imported: host memory settings not applied")
        return False
    if library.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return False
    target["THP_MEM_ALLOC_ENABLE"] = "1"  # read by PyTorch's CPU allocator at its first large allocation
    return True


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (``malloc_trim(0)``); ``True`` when some were released."""
    library = glibc()
    return bool(library is not None and library.malloc_trim(0))
