"""A :class:`~GASASegmenterLib.processRunner.ProcessRunner` on ``QProcess``, for the Slicer application.

Output arrives through Qt's event loop, so the UI never freezes; no call waits (no ``waitForStarted``, no
``waitForFinished``): a process that cannot start is reported by :meth:`QProcessRunner.startError` on a
later poll. Output comes as PythonQt's ``QByteArray``, whose bytes are ``data()`` (it has no buffer
protocol, so ``bytes(array)`` fails); :class:`~GASASegmenterLib.processRunner.LineDecoder` keeps UTF-8
characters that a read splits. On Windows, ``QProcess`` starts console programs without a console window
when the application has none (Slicer is a GUI application), so nothing flashes.

``QProcess`` leaves the child in Slicer's own process group: stopping the whole run is
:class:`~GASASegmenterLib.processTree.TreeStopper`'s job, which never signals that group.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .processRunner import LineDecoder, bytesOf

__all__ = ["QProcessRunner"]

logger = logging.getLogger(__name__)


class QProcessRunner:
    """Runs a command with ``qt.QProcess``; every call returns at once.

    Args:
        qtModule: the ``qt`` module whose ``QProcess`` and ``QProcessEnvironment`` are used (PythonQt's in
            Slicer, imported on first start; tests pass a stand-in that behaves as PythonQt's).
    """

    def __init__(self, qtModule: Any = None) -> None:
        self._qt = qtModule
        self._process: Any = None
        self._program = ""
        self._decoders = {"out": LineDecoder(), "err": LineDecoder()}

    def _qtModule(self) -> Any:
        if self._qt is None:
            import qt

            self._qt = qt
        return self._qt

    @property
    def pid(self) -> int | None:
        if self._process is None:
            return None
        return int(self._process.processId()) or None

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        if self._process is not None:
            raise RuntimeError("this runner has already started a process; create a new runner")
        qt = self._qtModule()
        process = qt.QProcess()
        if env is not None:
            environment = qt.QProcessEnvironment()
            for key, value in env.items():
                environment.insert(key, value)
            process.setProcessEnvironment(environment)
        self._program = command[0]
        logger.info("starting: %s", " ".join(command))
        process.start(command[0], list(command[1:]))
        self._process = process

    @property
    def _QProcess(self) -> Any:
        return self._qtModule().QProcess  # enums as Slicer's own code reads them: qt.QProcess.NotRunning

    def startError(self) -> str:
        process = self._process
        if process is None or process.error() != self._QProcess.FailedToStart:
            return ""
        return str(process.errorString()) or "the program could not be started"

    def _running(self) -> bool:
        return self._process is not None and self._process.state() != self._QProcess.NotRunning

    def _read(self, key: str, data: Any) -> list[str]:
        lines = self._decoders[key].feed(bytesOf(data))
        if not self._running():
            lines += self._decoders[key].finish()
        return lines

    def readLines(self) -> list[str]:
        if self._process is None:
            return []
        return self._read("out", self._process.readAllStandardOutput())

    def readErrorLines(self) -> list[str]:
        if self._process is None:
            return []
        return self._read("err", self._process.readAllStandardError())

    def exitCode(self) -> int | None:
        process = self._process
        if process is None or self._running() or self.startError():
            return None
        if process.exitStatus() == self._QProcess.CrashExit:
            return -1
        return int(process.exitCode())

    def kill(self) -> None:
        if self._running():
            self._process.kill()
