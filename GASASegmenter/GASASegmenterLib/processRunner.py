"""Background processes for the engine: a runner interface, a plain ``subprocess`` runner, tree killing.

The engine runs in its own process (a torch crash cannot take Slicer down). Every runner starts it as
the leader of a new process group / session, so that cancelling kills the whole tree: the engine and
anything it started. Runners never block: the caller polls ``readLines`` and ``exitCode`` (a QTimer in
Slicer, a loop with ``time.sleep`` in scripts and tests).

The Qt runner used inside the Slicer application is in :mod:`GASASegmenterLib.qtProcessRunner`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Protocol

__all__ = ["ProcessRunner", "SubprocessRunner", "isProcessAlive", "killProcessTree"]

logger = logging.getLogger(__name__)

#: Seconds a cancelled engine gets to stop cleanly (SIGTERM) before the whole group is killed.
TERMINATE_GRACE_SECONDS = 2.0


class ProcessRunner(Protocol):
    """What the logic needs from a background process runner."""

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``command`` in a new process group; returns at once."""

    @property
    def pid(self) -> int | None:
        """The process id of the started process (the group leader), ``None`` before start."""

    def readLines(self) -> list[str]:
        """Complete stdout lines that arrived since the last call (never blocks)."""

    def readErrorLines(self) -> list[str]:
        """Complete stderr lines that arrived since the last call (never blocks)."""

    def exitCode(self) -> int | None:
        """The exit code once the process has ended and its output was read; ``None`` while it runs."""

    def kill(self) -> None:
        """Stop the process and everything it started; returns once the process is reaped."""


def isProcessAlive(pid: int) -> bool:
    """Whether ``pid`` names a live process (zombies count as gone)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        result = subprocess.run(
            ["tasklist", "/FI", f"PID eq {pid}", "/NH"], capture_output=True, text=True, check=False
        )
        return str(pid) in result.stdout
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def killProcessTree(pid: int, *, grace: float = TERMINATE_GRACE_SECONDS) -> None:
    """Terminate the process group led by ``pid`` (POSIX) or the process tree of ``pid`` (Windows).

    POSIX: SIGTERM to the group (the engine then stops cleanly and removes partial files), SIGKILL to the
    group after ``grace`` seconds if anything is left. Windows: ``taskkill /F /T``.
    """
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True, check=False)
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _pump(stream: IO[str], sink: queue.SimpleQueue[str]) -> None:
    for line in iter(stream.readline, ""):
        sink.put(line.rstrip("\r\n"))
    stream.close()


class SubprocessRunner:
    """Runs a command with :class:`subprocess.Popen`; reader threads make every call non-blocking."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._stdout: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stderr: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        if self._process is not None:
            raise RuntimeError("this runner has already started a process; create a new runner")
        options: dict = {}
        if sys.platform == "win32":  # pragma: no cover
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            options["start_new_session"] = True
        logger.info("starting: %s", " ".join(command))
        self._process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(env) if env is not None else None,
            **options,
        )
        for stream, sink in ((self._process.stdout, self._stdout), (self._process.stderr, self._stderr)):
            thread = threading.Thread(target=_pump, args=(stream, sink), daemon=True)
            thread.start()
            self._threads.append(thread)

    @staticmethod
    def _drain(sink: queue.SimpleQueue[str]) -> list[str]:
        lines = []
        while True:
            try:
                lines.append(sink.get_nowait())
            except queue.Empty:
                return lines

    def readLines(self) -> list[str]:
        return self._drain(self._stdout)

    def readErrorLines(self) -> list[str]:
        return self._drain(self._stderr)

    def exitCode(self) -> int | None:
        if self._process is None:
            return None
        code = self._process.poll()
        if code is None or any(thread.is_alive() for thread in self._threads):
            return None
        return code

    def kill(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            killProcessTree(self._process.pid)
        else:  # the leader is gone, but children it left in its group may still run
            killProcessTree(self._process.pid, grace=0.0)
        self._process.wait()
        for thread in self._threads:
            thread.join(timeout=2.0)
