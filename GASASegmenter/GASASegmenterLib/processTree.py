"""Stop a process and everything it started, wherever a launcher sits in between, without ever waiting.

Slicer's ``PythonSlicer`` is a launcher: it starts ``python-real`` as its *child* and may die before it.
The engine therefore makes itself the leader of a new session and names its process group in its first
event (:class:`GASACore.events.StartEvent`). :class:`TreeStopper` signals every process it knows of: the
process the runner started, its descendants at the time (``/proc`` on Linux, ``ps`` on macOS), and the
groups they lead or that the engine named. It sends SIGTERM first (the engine then stops within one
window, removing its temporary files) and SIGKILL once the grace period is over; each step happens in
:meth:`TreeStopper.poll`, called from a timer, so the caller's thread never blocks. The caller's own process
group is never signalled as a group (a launcher started by ``QProcess`` shares Slicer's group).

On Windows the trees of the started process and of the engine are ended with ``taskkill /T /F`` (started
without a console window, not waited for).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "TERMINATE_GRACE_SECONDS",
    "TreeStopper",
    "descendants",
    "groupMembers",
    "isProcessAlive",
    "processTable",
]

logger = logging.getLogger(__name__)

#: Seconds the engine gets to stop cleanly after SIGTERM before everything left is killed.
TERMINATE_GRACE_SECONDS = 1.5
#: Seconds after SIGKILL before the stopper gives up waiting (and says so in the log).
KILL_WAIT_SECONDS = 5.0
#: ``subprocess`` flag that starts a console program without a console window (Windows).
CREATE_NO_WINDOW = 0x08000000

_PROC = Path("/proc")


def _procStat(pid: int) -> tuple[int, int, str] | None:
    """``(ppid, pgid, state)`` of ``pid`` from ``/proc/PID/stat`` (Linux), ``None`` when it is gone."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[2]), fields[0]


def _startTime(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, ``/proc/PID/stat`` field 22); ``None`` where unknown."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


def processTable() -> dict[int, tuple[int, int]]:
    """``pid -> (ppid, pgid)`` of every live (non-zombie) process this user can see (POSIX)."""
    table: dict[int, tuple[int, int]] = {}
    if _PROC.is_dir():
        for entry in _PROC.iterdir():
            if entry.name.isdigit():
                stat = _procStat(int(entry.name))
                if stat is not None and stat[2] != "Z":
                    table[int(entry.name)] = (stat[0], stat[1])
        return table
    result = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,pgid=,stat="], capture_output=True, text=True, check=False, timeout=5
    )
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].isdigit() and not parts[3].startswith("Z"):
            table[int(parts[0])] = (int(parts[1]), int(parts[2]))
    return table


def descendants(roots: Iterable[int], table: dict[int, tuple[int, int]] | None = None) -> set[int]:
    """Every live process below ``roots`` (children, their children, ...), ``roots`` not included.

    Example: with ``{10: (1, 10), 11: (10, 10), 12: (11, 12), 13: (1, 13)}`` (pid -> (ppid, pgid)),
    ``descendants([10], table) == {11, 12}``.
    """
    table = processTable() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found - set(roots)


def groupMembers(pgid: int, table: dict[int, tuple[int, int]] | None = None) -> set[int]:
    """The live processes of process group ``pgid``."""
    table = processTable() if table is None else table
    return {pid for pid, (_, group) in table.items() if group == pgid}


def isProcessAlive(pid: int) -> bool:
    """Whether ``pid`` names a live process (zombies count as gone)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        return _windowsAlive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not _PROC.is_dir():
        return True
    stat = _procStat(pid)
    return stat is not None and stat[2] != "Z"


def _windowsAlive(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel = ctypes.windll.kernel32
    handle = kernel.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel.CloseHandle(handle)


def _signal(pid: int, signum: int, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


class TreeStopper:
    """Stops a process tree in steps: :meth:`begin`, then :meth:`poll` until it returns ``True``.

    Args:
        rootPid: the process the runner started (a launcher, or the engine itself); ``None`` if unknown.
        groups: process groups to stop as a whole (the engine's, from its start event).
        pids: further processes (the engine's pid, from its start event).
        grace: seconds between SIGTERM and SIGKILL.
    """

    def __init__(
        self,
        rootPid: int | None,
        groups: Iterable[int] = (),
        pids: Iterable[int] = (),
        *,
        grace: float = TERMINATE_GRACE_SECONDS,
    ) -> None:
        self._ownGroup = os.getpgrp() if hasattr(os, "getpgrp") else None
        self._pids = {p for p in (rootPid, *pids) if p}
        self._groups = {g for g in groups if g and g != self._ownGroup}
        self._grace = grace
        self._started: float | None = None
        self._killed: float | None = None
        self._done = False
        self._windowsKillers: list[subprocess.Popen] = []
        self._starts: dict[int, str | None] = {}

    @property
    def started(self) -> bool:
        return self._started is not None

    def add(self, pid: int | None = None, pgid: int | None = None) -> None:
        """Also stop ``pid`` / group ``pgid`` (named by the engine); once stopping, they are signalled at once."""
        signum = signal.SIGKILL if self._killed else signal.SIGTERM
        stopping = self.started and not self._done and sys.platform != "win32"
        if pgid is not None and pgid != self._ownGroup and pgid not in self._groups:
            self._groups.add(pgid)
            if stopping and groupMembers(pgid):
                _signal(pgid, signum, group=True)
        if pid is not None and pid not in self._pids:
            self._pids.add(pid)
            if stopping and pgid not in self._groups and isProcessAlive(pid):
                _signal(pid, signum, group=False)

    def begin(self) -> None:
        """Send SIGTERM to everything known (taskkill on Windows); returns at once."""
        if self.started:
            return
        self._started = time.monotonic()
        if sys.platform == "win32":  # pragma: no cover - Windows only
            self._killWindowsTrees()
            return
        self._send(signal.SIGTERM)

    def _collect(self) -> dict[int, tuple[int, int]]:
        """Refresh the known processes: descendants of the known ones and members of the known groups."""
        table = processTable()
        self._pids |= descendants(self._pids, table)
        for pgid in self._groups:
            self._pids |= groupMembers(pgid, table)
        for pid in list(self._pids):
            if pid not in table:
                continue
            start = _startTime(pid)
            if self._starts.setdefault(pid, start) != start:  # the id was freed and now names another process
                self._pids.discard(pid)
            elif table[pid][1] != self._ownGroup:
                self._groups.add(table[pid][1])
        return table

    def _send(self, signum: int) -> None:
        """Signal the live groups, then the live processes outside them (each process gets one signal).

        Only what the process table shows alive now is signalled, so an id that was freed and reused by an
        unrelated process is never hit.
        """
        table = self._collect()
        live = {pgid for pgid in self._groups if groupMembers(pgid, table)}
        for pgid in live:
            _signal(pgid, signum, group=True)
        for pid in self._pids:
            if pid in table and table[pid][1] not in live:
                _signal(pid, signum, group=False)

    def _alive(self) -> set[int]:
        table = self._collect()
        alive = {pid for pid in self._pids if pid in table}  # _collect dropped ids that name other processes
        alive |= {pid for pgid in self._groups for pid in groupMembers(pgid, table)}
        return alive

    def poll(self) -> bool:
        """Escalate when due; ``True`` once no process of the tree is left (or it cannot be stopped)."""
        if self._done or not self.started:
            return self._done
        if sys.platform == "win32":  # pragma: no cover - Windows only
            self._done = all(k.poll() is not None for k in self._windowsKillers) and not any(
                _windowsAlive(pid) for pid in self._pids
            )
            return self._done
        alive = self._alive()
        now = time.monotonic()
        if not alive:
            self._done = True
        elif self._killed is None and now - self._started >= self._grace:
            logger.info("processes %s still running %.1f s after SIGTERM: killing them", sorted(alive), self._grace)
            self._killed = now
            self._send(signal.SIGKILL)
        elif self._killed is not None and now - self._killed >= KILL_WAIT_SECONDS:
            logger.warning("processes %s survived SIGKILL for %.0f s; giving up", sorted(alive), KILL_WAIT_SECONDS)
            self._done = True
        return self._done

    def killNow(self) -> None:
        """SIGKILL everything at once (application shutdown); does not wait."""
        if sys.platform == "win32":  # pragma: no cover - Windows only
            self._started = self._started or time.monotonic()
            self._killWindowsTrees()
            return
        self._started = self._started or time.monotonic()
        self._killed = time.monotonic()
        self._send(signal.SIGKILL)

    def _killWindowsTrees(self) -> None:  # pragma: no cover - Windows only
        for pid in sorted(p for p in self._pids if _windowsAlive(p)):
            self._windowsKillers.append(
                subprocess.Popen(
                    ["taskkill", "/T", "/F", "/PID", str(pid)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    creationflags=CREATE_NO_WINDOW,
                )
            )
