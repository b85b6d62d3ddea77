"""Output locks: two runs writing the same output never interleave; the later one refuses.

A lock is a small file next to the output (``out/.ct.nii.gz.lock`` for ``out/ct.nii.gz``), created with
``O_CREAT | O_EXCL`` (atomic on local file systems) and holding the owner's pid and host as JSON. A lock
whose owner is a dead process on this host is stale (a run killed with SIGKILL) and is taken over; a lock
of another host, or of a live process, is refused with one line naming its owner.

Example::

    with OutputLocks([Path("out/ct.nii.gz")]):
        ...  # write out/ct.nii.gz
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from GASACore.errors import OutputError

__all__ = ["OutputLocks", "lock_path", "pid_alive", "read_lock_owner"]

logger = logging.getLogger(__name__)


def lock_path(output: Path) -> Path:
    """The lock file of ``output``: a hidden sibling, ``out/ct.nii.gz`` -> ``out/.ct.nii.gz.lock``."""
    output = Path(output)
    return output.parent / f".{output.name}.lock"


def _owner() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


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
        for _ in range(3):
            if self._create(lock, output):
                self.held.append(lock)
                return
            owner = read_lock_owner(lock)
            if not _is_stale(owner):
                raise OutputError(
                    f"output {output} is being written by {_describe(owner)}; wait for it to finish, or remove "
                    f"{lock} if no such run exists"
                )
            self._break(lock, owner)
        raise OutputError(f"could not lock output {output}: its lock {lock} keeps changing")

    @staticmethod
    def _create(lock: Path, output: Path) -> bool:
        """Create ``lock`` holding this process; False when it exists."""
        try:
            descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as err:
            raise OutputError(f"cannot lock output {output}: {err.strerror.lower()} ({lock})") from err
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                json.dump(_owner(), stream)
        except OSError as err:
            lock.unlink(missing_ok=True)
            raise OutputError(f"cannot lock output {output}: {(err.strerror or str(err)).lower()} ({lock})") from err
        return True

    @staticmethod
    def _break(lock: Path, owner: dict[str, object] | None) -> None:
        """Take a stale lock out of the way: moved aside first, so a lock created meanwhile is put back."""
        aside = lock.parent / f"{lock.name}.stale-{secrets.token_hex(4)}"
        try:
            os.rename(lock, aside)
        except FileNotFoundError:
            return  # another run removed it first
        if read_lock_owner(aside) != owner:  # a live run re-created the lock between our read and rename
            os.replace(aside, lock)
            return
        logger.warning("taking over %s, left by process %s that no longer runs", lock, owner and owner.get("pid"))
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        """Remove the locks this object holds (only those still naming this process)."""
        for lock in reversed(self.held):
            if read_lock_owner(lock) in (None, _owner()):
                lock.unlink(missing_ok=True)
        self.held.clear()

    def __enter__(self) -> OutputLocks:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()
