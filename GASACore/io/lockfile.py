"""Output locks: two runs writing the same output never interleave; the later one refuses.

A lock is a small file next to the output (``out/.ct.nii.gz.lock`` for ``out/ct.nii.gz``), created with
``O_CREAT | O_EXCL`` (atomic on local file systems) and holding the owner's pid, host and start time as JSON
(:func:`create_lock_file`). A lock whose owner is a dead process on this host is stale (a run killed with
SIGKILL) and is taken over; a lock of another host, or of a live process, is refused with one line naming
its owner.

Taking over a stale lock is itself guarded (:func:`break_stale_lock`): only the holder of a second,
short-lived "breaker" file (``.ct.nii.gz.lock.break``) may remove a lock, and it re-reads the lock under that
guard. Two runs that both find the same stale lock therefore cannot both remove it and each believe the
output is theirs: one removes it and creates its own, the other then finds a live owner and refuses.
The model-install lock (:mod:`GASACore.models.lock`) uses the same primitives with its own staleness rule.

Example::

    with OutputLocks([Path("out/ct.nii.gz")]):
        ...  # write out/ct.nii.gz
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from GASACore.errors import OutputError

__all__ = ["OutputLocks", "break_stale_lock", "create_lock_file", "lock_path", "pid_alive", "read_lock_owner"]

logger = logging.getLogger(__name__)

#: A breaker file older than this (s) was left by a process that died while breaking a lock (which takes ms).
BREAKER_STALE_AFTER_S = 10.0
#: Attempts (create, or break a stale lock) before a lock that keeps changing is given up.
_ATTEMPTS = 50
_RETRY_PAUSE_S = 0.02


def lock_path(output: Path) -> Path:
    """The lock file of ``output``: a hidden sibling, ``out/ct.nii.gz`` -> ``out/.ct.nii.gz.lock``."""
    output = Path(output)
    return output.parent / f".{output.name}.lock"


def _owner() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def create_lock_file(lock: Path) -> bool:
    """Create ``lock`` naming this process (pid, host, start time); ``False`` when it exists already.

    Raises:
        OSError: the lock cannot be created or written (e.g. a full disk or a read-only folder); no lock file
            is left behind then.
    """
    descriptor = None
    try:
        descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump({**_owner(), "started": time.time()}, stream)
    except OSError:
        lock.unlink(missing_ok=True)
        raise
    return True


def _breaker_path(lock: Path) -> Path:
    return lock.parent / f"{lock.name}.break"


def _clear_abandoned_breaker(breaker: Path) -> None:
    try:
        age = time.time() - breaker.stat().st_mtime
    except FileNotFoundError:
        return
    if age > BREAKER_STALE_AFTER_S:
        logger.warning("removing %s, left %.0f s ago by a process that died while breaking a lock", breaker, age)
        breaker.unlink(missing_ok=True)


def break_stale_lock(lock: Path, is_stale: Callable[[Path], bool]) -> bool:
    """Remove ``lock`` if ``is_stale(lock)`` holds, deciding and removing under the breaker guard.

    Args:
        lock: the lock file.
        is_stale: the caller's rule (reads the lock's owner and age); called while the guard is held, so the
            lock it judges is the one removed.

    Returns:
        ``True`` when the lock is gone now (removed here, or already absent); ``False`` when it is not stale,
        or another process is breaking it at this moment (retry after a short pause).
    """
    breaker = _breaker_path(lock)
    try:
        taken = create_lock_file(breaker)
    except OSError:
        return False
    if not taken:
        _clear_abandoned_breaker(breaker)
        return False
    try:
        if not lock.exists():
            return True
        if not is_stale(lock):
            return False
        logger.warning("taking over %s, left by %s that no longer runs", lock, read_lock_owner(lock))
        lock.unlink(missing_ok=True)
        return True
    finally:
        breaker.unlink(missing_ok=True)


def read_lock_owner(lock: Path) -> dict[str, object] | None:
    """The owner a lock file names, or ``None`` when it is unreadable or not ours (e.g. being written)."""
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (another user's live process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True


def _is_stale(owner: dict[str, object] | None) -> bool:
    """A lock of a dead process on this host (never one of another host: its pids mean nothing here)."""
    if owner is None or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    return isinstance(pid, int) and pid > 0 and pid != os.getpid() and not pid_alive(pid)


def _describe(owner: dict[str, object] | None) -> str:
    if owner is None:
        return "another run (its lock file cannot be read)"
    return f"another run (pid {owner.get('pid')} on {owner.get('host')})"


class OutputLocks:
    """Hold the locks of some outputs; a context manager that releases them on exit (also on errors)."""

    def __init__(self, outputs: Iterable[Path]) -> None:
        self.outputs = list(dict.fromkeys(Path(p) for p in outputs))
        self.held: list[Path] = []

    def acquire(self) -> None:
        """Lock every output, or none: on the first one held elsewhere, release those taken and refuse.

        Raises:
            OutputError: an output is locked by a live run (or one of another host), or a lock cannot be
                created (e.g. a full disk or a read-only folder).
        """
        try:
            for output in self.outputs:
                self._take(output)
        except BaseException:
            self.release()
            raise

    def _take(self, output: Path) -> None:
        lock = lock_path(output)
        for _ in range(_ATTEMPTS):
            try:
                if create_lock_file(lock):
                    self.held.append(lock)
                    return
            except OSError as err:
                reason = (err.strerror or str(err)).lower()
                raise OutputError(f"cannot lock output {output}: {reason} ({lock})") from err
            owner = read_lock_owner(lock)
            if not _is_stale(owner):
                raise OutputError(
                    f"output {output} is being written by {_describe(owner)}; wait for it to finish, or remove "
                    f"{lock} if no such run exists"
                )
            if not break_stale_lock(lock, lambda path: _is_stale(read_lock_owner(path))):
                time.sleep(_RETRY_PAUSE_S)
        raise OutputError(f"could not lock output {output}: its lock {lock} keeps changing")

    def release(self) -> None:
        """Remove the locks this object holds (only those still naming this process)."""
        for lock in reversed(self.held):
            owner = read_lock_owner(lock)
            if owner is None or (owner.get("pid"), owner.get("host")) == (os.getpid(), socket.gethostname()):
                lock.unlink(missing_ok=True)
        self.held.clear()

    def __enter__(self) -> OutputLocks:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()
