"""A :class:`~GASASegmenterLib.processRunner.ProcessRunner` on ``QProcess`` for the Slicer application.

Output arrives through Qt's event loop, so the UI never freezes. On Linux and macOS the engine is started
through :mod:`GASASegmenterLib.sessionLauncher`, which makes it the leader of a new session (same process
id), so that cancelling kills the whole process group; on Windows the tree is killed with ``taskkill /T``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import qt

from .processRunner import killProcessTree

__all__ = ["QProcessRunner"]

logger = logging.getLogger(__name__)


class QProcessRunner:
    """Runs a command with ``qt.QProcess``; every call returns at once."""

    def __init__(self) -> None:
        self._process = qt.QProcess()
        self._stdout = ""
        self._stderr = ""
        self._started = False

    @property
    def pid(self) -> int | None:
        pid = int(self._process.processId()) if self._started else 0
        return pid or None

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        if self._started:
            raise RuntimeError("this runner has already started a process; create a new runner")
        program, arguments = command[0], list(command[1:])
        if sys.platform != "win32":
            launcher = str(Path(__file__).with_name("sessionLauncher.py"))
            arguments = [launcher, program, *arguments]
            program = command[0]  # the same Python runs the launcher, which then execs the command
        if env is not None:
            environment = qt.QProcessEnvironment()
            for key, value in env.items():
                environment.insert(key, value)
            self._process.setProcessEnvironment(environment)
        logger.info("starting: %s %s", program, " ".join(arguments))
        self._process.start(program, arguments)
        self._started = True
        if not self._process.waitForStarted(10000):
            raise OSError(f"could not start {program}: {self._process.errorString()}")

    @staticmethod
    def _split(buffer: str, data: str) -> tuple[list[str], str]:
        text = buffer + data
        *lines, rest = text.split("\n")
        return [line.rstrip("\r") for line in lines], rest

    def readLines(self) -> list[str]:
        data = bytes(self._process.readAllStandardOutput()).decode("utf-8", "replace")
        lines, self._stdout = self._split(self._stdout, data)
        if self._process.state() == qt.QProcess.NotRunning and self._stdout:
            lines, self._stdout = [*lines, self._stdout], ""
        return lines

    def readErrorLines(self) -> list[str]:
        data = bytes(self._process.readAllStandardError()).decode("utf-8", "replace")
        lines, self._stderr = self._split(self._stderr, data)
        if self._process.state() == qt.QProcess.NotRunning and self._stderr:
            lines, self._stderr = [*lines, self._stderr], ""
        return lines

    def exitCode(self) -> int | None:
        if not self._started or self._process.state() != qt.QProcess.NotRunning:
            return None
        if self._process.bytesAvailable():
            return None
        if self._process.exitStatus() == qt.QProcess.CrashExit:
            return -1
        return int(self._process.exitCode())

    def kill(self) -> None:
        if not self._started:
            return
        pid = self.pid
        if pid is not None and self._process.state() != qt.QProcess.NotRunning:
            killProcessTree(pid)
        self._process.kill()
        self._process.waitForFinished(5000)
