"""An inter-process lock file: one process installs a model, a second waits and reuses its result.

The lock is a file created with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems) holding the
owner's pid, host name and start time (:func:`GASACore.io.lockfile.create_lock_file`, shared with the output
locks). A lock is *stale*, and is broken, when its owner ran on this host and that pid no longer runs, or
when it has not been refreshed (its modification time) for ``stale_after`` seconds, the owner being on
another host or frozen. Breaking goes through :func:`GASACore.io.lockfile.break_stale_lock`, so two waiters
that find the same stale lock cannot both remove it. Torch-free.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from GASACore.errors import Cancelled, ModelError
from GASACore.io.lockfile import break_stale_lock, create_lock_file, pid_alive, read_lock_owner

__all__ = ["LockTimeout", "file_lock"]

logger = logging.getLogger(__name__)


class LockTimeout(ModelError):
    """Another process held the lock for longer than the caller would wait."""


def _is_stale(path: Path, stale_after: float) -> bool:
    owner = read_lock_owner(path)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False  # released meanwhile: not stale, just gone
    if owner is None:
        return age > 5.0  # half-written by its owner a moment ago, or garbage
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        return not pid_alive(owner["pid"])
    return age > stale_after


@contextmanager
def file_lock(
    path: Path,
    *,
    what: str,
    timeout: float = 3600.0,
    stale_after: float = 600.0,
    poll: float = 0.2,
    cancel: Callable[[], bool] | None = None,
) -> Iterator[Callable[[], None]]:
    """Hold ``path`` as a lock file while the body runs; wait while another live process holds it.

    Args:
        path: the lock file (its folder is created).
        what: what the lock protects, for messages ("installing totalseg-organs@2.0.0").
        timeout: seconds to wait for another holder before giving up.
        stale_after: seconds without a refresh after which another host's lock counts as abandoned.
        poll: seconds between checks while waiting.
        cancel: returns ``True`` to stop waiting (``Cancelled``).

    Yields:
        ``refresh()``: call it now and then during long work so that the lock does not look abandoned.

    Raises:
        LockTimeout: still held by another process after ``timeout`` seconds.
        Cancelled: ``cancel`` returned ``True`` while waiting.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    announced = False
    while not create_lock_file(path):
        if _is_stale(path, stale_after) and break_stale_lock(path, lambda lock: _is_stale(lock, stale_after)):
            continue
        if not announced:
            logger.info("another process (%s) is %s; waiting", read_lock_owner(path), what)
            announced = True
        if cancel is not None and cancel():
            raise Cancelled(f"stopped waiting for another process {what}")
        if time.monotonic() > deadline:
            owner = read_lock_owner(path) or {}
            raise LockTimeout(
                f"another process (pid {owner.get('pid', '?')} on {owner.get('host', '?')}) is still {what} after "
                f"{timeout:g} s; if it died, delete {path}"
            )
        time.sleep(poll)

    def refresh() -> None:
        with suppress(OSError):
            os.utime(path)

    try:
        yield refresh
    finally:
        if (read_lock_owner(path) or {}).get("pid") == os.getpid():
            path.unlink(missing_ok=True)
