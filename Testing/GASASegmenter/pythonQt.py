"""Stand-ins for the two PythonQt classes the module's runner uses, for tests without the Slicer application.

PythonQt is only inside Slicer, so these reproduce what the runner relies on, as PythonQt shows it to
Python (checked against Slicer's own use of ``QProcess`` in DICOMLib and PythonQt's wrappers):

- ``QByteArray``: its bytes are ``data()``; it has no buffer protocol, so ``bytes(array)`` raises.
- ``QProcess``: ``start`` returns at once and a program that cannot be started is reported by ``error()``
  (``FailedToStart``) instead of an exception; the child stays in the caller's process group (QProcess makes
  no new group); output arrives in pieces of whatever size the pipe gives (here a few bytes, so UTF-8
  characters are split between reads); ``processId()`` is 0 once the process has ended.

The processes are real (``subprocess``); only the Qt wrapper is stood in for.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

__all__ = ["QByteArray", "QProcess", "QProcessEnvironment"]

#: Bytes per read: small enough to split multi-byte UTF-8 characters and JSON lines between reads.
READ_SIZE = 7


class QByteArray:
    """PythonQt's ``QByteArray`` as Python code sees it: ``data()`` returns ``bytes``; no buffer protocol."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes = b"") -> None:
        self._data = bytes(data)

    def data(self) -> bytes:
        return self._data

    def size(self) -> int:
        return len(self._data)

    def isEmpty(self) -> bool:
        return not self._data


class QProcessEnvironment:
    def __init__(self) -> None:
        self.variables: dict[str, str] = {}

    def insert(self, key: str, value: str) -> None:
        self.variables[str(key)] = str(value)


class QProcess:
    """The parts of ``QProcess`` the runner uses, over a real child process.

    Output is read without blocking when it is asked for, at most a few pieces of :data:`READ_SIZE` bytes per
    call; when the process has ended, what its pipes still hold is read and the pipes are closed (as Qt
    does: what a surviving grandchild writes later is lost).
    """

    NotRunning, Starting, Running = 0, 1, 2
    FailedToStart, Crashed, Timedout, ReadError, WriteError, UnknownError = 0, 1, 2, 3, 4, 5
    NormalExit, CrashExit = 0, 1

    def __init__(self) -> None:
        self._popen: subprocess.Popen[bytes] | None = None
        self._environment: dict[str, str] | None = None
        self._error = self.UnknownError
        self._errorString = "Unknown error"
        self._buffers = {"out": bytearray(), "err": bytearray()}
        self._fds: dict[str, int] = {}
        self._drained = False

    def setProcessEnvironment(self, environment: QProcessEnvironment) -> None:
        self._environment = dict(environment.variables)

    def start(self, program: str, arguments: Sequence[str]) -> None:
        try:
            self._popen = subprocess.Popen(
                [program, *arguments],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._environment,
            )
        except OSError as err:
            self._error, self._errorString = self.FailedToStart, f"execvp: {err.strerror}"
            return
        for key, stream in (("out", self._popen.stdout), ("err", self._popen.stderr)):
            os.set_blocking(stream.fileno(), False)
            self._fds[key] = stream.fileno()

    def _readSome(self, key: str, pieces: int) -> None:
        fd = self._fds.get(key)
        for _ in range(pieces):
            if fd is None:
                return
            try:
                chunk = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return
            if not chunk:
                return
            self._buffers[key] += chunk

    def _finished(self) -> bool:
        if self._popen is None or self._popen.poll() is None:
            return False
        if not self._drained:
            self._drained = True
            for key in list(self._fds):
                self._readSome(key, 1 << 30)
            for stream in (self._popen.stdout, self._popen.stderr):
                stream.close()
            self._fds.clear()
        return True

    def state(self) -> int:
        if self._popen is None or self._finished():
            return self.NotRunning
        return self.Running

    def processId(self) -> int:
        return self._popen.pid if self._popen is not None and not self._finished() else 0

    def _take(self, key: str) -> QByteArray:
        if not self._finished():
            self._readSome(key, 3)
        data = bytes(self._buffers[key])
        self._buffers[key].clear()
        return QByteArray(data)

    def readAllStandardOutput(self) -> QByteArray:
        return self._take("out")

    def readAllStandardError(self) -> QByteArray:
        return self._take("err")

    def error(self) -> int:
        if self._popen is not None and self._finished() and self._popen.returncode < 0:
            return self.Crashed
        return self._error

    def errorString(self) -> str:
        return self._errorString

    def exitStatus(self) -> int:
        return self.CrashExit if self._popen is not None and (self._popen.returncode or 0) < 0 else self.NormalExit

    def exitCode(self) -> int:
        code = self._popen.returncode if self._popen is not None else 0
        return code if code and code > 0 else 0

    def kill(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self._popen.kill()
