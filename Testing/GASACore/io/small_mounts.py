"""Real small file systems for output tests: a 64 KB tmpfs (a full disk) and a read-only one (needs root).

Also :func:`run_with_file_size_limit`: a Python snippet in a subprocess under ``RLIMIT_FSIZE`` (``ulimit -f``)
with SIGXFSZ ignored, so a write past the limit fails with EFBIG instead of killing the process.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path


@contextlib.contextmanager
def tmpfs(folder: Path, *, size: str = "64k", read_only: bool = False) -> Iterator[Path]:
    """Mount a fresh tmpfs of ``size`` on ``folder`` (made here) for the ``with`` body; unmounted after."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True, capture_output=True)


def fill(folder: Path) -> None:
    """Fill ``folder``'s file system to the last byte with a hidden file (left there: the disk stays full)."""
    descriptor = os.open(folder / ".filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(descriptor, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _limit(limit_bytes: int, ignore_signal: bool) -> None:
    if ignore_signal:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))


def run_with_file_size_limit(
    argv: Sequence[str], limit_bytes: int, *, ignore_signal: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGV...`` with files limited to ``limit_bytes``; output captured.

    ``ignore_signal``: SIGXFSZ is ignored in the child (else its default kills it, unless the child ignores it).
    """
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=lambda: _limit(limit_bytes, ignore_signal),
        env={**os.environ},
    )
