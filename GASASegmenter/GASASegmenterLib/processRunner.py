"""Background processes: the runner interface, a ``subprocess`` runner, and output decoding.

The engine runs in its own process (a torch crash cannot take Slicer down). Runners never block: the
caller polls :meth:`ProcessRunner.readLines` and :meth:`ProcessRunner.exitCode` (a ``QTimer`` in Slicer, a
loop with ``time.sleep`` in scripts and tests). Stopping a run (its whole process tree, wherever a
launcher sits in between) is :class:`GASASegmenterLib.backgroundProcess.BackgroundProcess`'s job, with
:class:`GASASegmenterLib.processTree.TreeStopper`; a runner only starts, reads and kills its own child.

The Qt runner used inside the Slicer application is :class:`GASASegmenterLib.qtProcessRunner.QProcessRunner`;
both decode output with :class:`LineDecoder`.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any, Protocol

from .processTree import CREATE_NO_WINDOW

__all__ = ["LineDecoder", "ProcessRunner", "SubprocessRunner", "bytesOf"]

logger = logging.getLogger(__name__)

#: ``subprocess`` flag: a new process group, so that console control events do not reach Slicer (Windows).
CREATE_NEW_PROCESS_GROUP = 0x00000200


class ProcessRunner(Protocol):
    """What the module needs from a background process runner; no method blocks."""

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``command``; returns at once. Raises ``OSError`` when it knows at once that it cannot start."""

    @property
    def pid(self) -> int | None:
        """The started process's id; ``None`` before it started (or when it could not)."""

    def startError(self) -> str:
        """Why the process could not be started (found out after :meth:`start` returned); ``""`` otherwise."""

    def readLines(self) -> list[str]:
        """Complete stdout lines that arrived since the last call; the last partial line once it has ended."""

    def readErrorLines(self) -> list[str]:
        """The same for stderr."""

    def exitCode(self) -> int | None:
        """The exit code once the process has ended (negative: killed by a signal); ``None`` while it runs."""

    def kill(self) -> None:
        """SIGKILL (TerminateProcess) the started process only; returns at once."""


def bytesOf(data: Any) -> bytes:
    """The bytes of a ``QByteArray`` as PythonQt returns it (``data()``, no buffer protocol), or of ``bytes``.

    Example: ``bytesOf(b"ab") == b"ab"``; for a PythonQt ``QByteArray`` ``qa``, ``bytesOf(qa) == qa.data()``.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raw = data.data()
    if isinstance(raw, str):  # very old PythonQt builds hand back str
        return raw.encode("latin-1")
    return bytes(raw)


class LineDecoder:
    """Bytes in arbitrary chunks -> complete text lines (UTF-8, a character split across chunks is kept whole).

    Example::

        >>> decoder = LineDecoder()
        >>> decoder.feed("Leber ✓\\nMi".encode()[:9]), decoder.feed("Leber ✓\\nMi".encode()[9:])
        ([], ['Leber ✓'])
        >>> decoder.finish()
        ['Mi']
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> list[str]:
        """The lines that ``data`` completes (``\\r\\n`` and ``\\n`` endings removed)."""
        text = self._pending + self._decoder.decode(data)
        *lines, self._pending = text.split("\n")
        return [line.rstrip("\r") for line in lines]

    def finish(self) -> list[str]:
        """The last line, if the output did not end with a newline."""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return [text.rstrip("\r")] if text else []


def _pump(stream: IO[bytes], sink: queue.SimpleQueue[bytes]) -> None:
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        sink.put(chunk)
    stream.close()


class SubprocessRunner:
    """Runs a command with :class:`subprocess.Popen`; reader threads make every call non-blocking.

    Args:
        newSession: start the process as the leader of a new session (POSIX; a new process group without a
            console window on Windows). ``False`` keeps it in this process's group, as ``QProcess`` does.
    """

    def __init__(self, *, newSession: bool = True) -> None:
        self._newSession = newSession
        self._process: subprocess.Popen[bytes] | None = None
        self._queues: dict[str, queue.SimpleQueue[bytes]] = {"out": queue.SimpleQueue(), "err": queue.SimpleQueue()}
        self._decoders = {"out": LineDecoder(), "err": LineDecoder()}
        self._threads: list[threading.Thread] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def startError(self) -> str:
        return ""

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        if self._process is not None:
            raise RuntimeError("this runner has already started a process; create a new runner")
        options: dict[str, Any] = {}
        if sys.platform == "win32":  # pragma: no cover - Windows only
            options["creationflags"] = CREATE_NO_WINDOW | (CREATE_NEW_PROCESS_GROUP if self._newSession else 0)
        elif self._newSession:
            options["start_new_session"] = True
        logger.info("starting: %s", " ".join(command))
        self._process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            **options,
        )
        for key, stream in (("out", self._process.stdout), ("err", self._process.stderr)):
            thread = threading.Thread(target=_pump, args=(stream, self._queues[key]), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, key: str) -> list[str]:
        lines: list[str] = []
        while True:
            try:
                lines += self._decoders[key].feed(self._queues[key].get_nowait())
            except queue.Empty:
                break
        if self._ended(key):
            lines += self._decoders[key].finish()
        return lines

    def _ended(self, key: str) -> bool:
        """Whether stream ``key`` can bring nothing more: process and readers done, its queue drained.

        Only this stream's queue counts: the other stream may still hold unread lines, and waiting for it
        would lose this stream's last line without a newline once the caller sees the exit code.
        """
        return (
            self._process is not None
            and self._process.poll() is not None
            and not any(thread.is_alive() for thread in self._threads)
            and self._queues[key].empty()
        )

    def readLines(self) -> list[str]:
        return self._read("out")

    def readErrorLines(self) -> list[str]:
        return self._read("err")

    def exitCode(self) -> int | None:
        if self._process is None or self._process.poll() is None:
            return None
        if any(thread.is_alive() for thread in self._threads):
            return None  # a child that inherited the pipes still writes; its output is not read yet
        return self._process.returncode

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(OSError):  # it ended meanwhile
                self._process.kill()
