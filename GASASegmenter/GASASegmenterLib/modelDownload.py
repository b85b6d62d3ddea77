"""A catalogue model downloaded in the engine's Python (``gasa-models fetch ID --progress json``), never blocking.

The download runs in its own process, started through the same runners as a segmentation and polled by the
same timer; GASACore does everything that matters (mirrors, resume with HTTP Range, proxies, timeouts, size
and SHA-256 before unpacking, archive checks, the atomic install). Its ``download`` events become
``onProgress("download", fraction)`` and :attr:`ModelDownload.progressText` (``download: 12 of 234 MB``).
Cancel stops the whole process tree like a segmentation's (the engine leads its own session and names its
group): the part already downloaded stays in ``$GASA_HOME/models/ID/.VERSION.zip.part`` and the next
download resumes it. A refused download (wrong size or checksum) leaves neither a model nor a partial file,
and its message is GASACore's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from GASACore.events import DownloadEvent, ErrorEvent, LogEvent, parse_event_line

from .backgroundProcess import BackgroundProcess
from .job import JobState
from .processRunner import ProcessRunner

__all__ = ["ModelDownload", "downloadText", "fetchCommand", "importCommand", "modelsCommand"]

logger = logging.getLogger(__name__)

#: The exit code of ``gasa-models`` when it was stopped (it keeps the partial download).
CANCELLED_EXIT_CODE = 130


def modelsCommand(engine: Sequence[str]) -> list[str]:
    """How to start ``gasa-models`` from how ``gasa-segment`` is started (same Python, same launcher).

    Example::

        >>> modelsCommand(["PythonSlicer", "-m", "GASACore.cli"])
        ['PythonSlicer', '-m', 'GASACore.models.cli']

    Raises:
        ValueError: ``engine`` does not end with ``-m GASACore.cli``.
    """
    engine = list(engine)
    if engine[-2:] != ["-m", "GASACore.cli"]:
        raise ValueError(f"the engine command must end with '-m GASACore.cli', got {engine!r}")
    return [*engine[:-1], "GASACore.models.cli"]


def fetchCommand(models: Sequence[str], spec: str) -> list[str]:
    """``gasa-models fetch ID@VERSION --progress json``."""
    return [*models, "fetch", spec, "--progress", "json"]


def importCommand(models: Sequence[str], archive: str | Path, fallbackId: str) -> list[str]:
    """``gasa-models import ARCHIVE --fallback-id ID --json``: verified against the catalogue when it knows the
    archive (by SHA-256 or file name), else installed under ``fallbackId``; prints the install as JSON."""
    return [*models, "import", str(archive), "--fallback-id", fallbackId, "--json"]


def downloadText(received: int, total: int | None) -> str:
    """The stage label of a download.

    Examples::

        >>> downloadText(12_345_678, 233_742_255), downloadText(5_000_000, None)
        ('download: 12.3 of 233.7 MB (5%)', 'download: 5.0 MB')
    """
    if not total:
        return f"download: {received / 1e6:.1f} MB"
    return f"download: {received / 1e6:.1f} of {total / 1e6:.1f} MB ({100 * received / total:.0f}%)"


class ModelDownload:
    """``gasa-models fetch`` of one catalogue entry in a background process.

    Attributes:
        spec: the entry's ``ID@VERSION``.
        state: a :class:`~GASASegmenterLib.job.JobState` (``finished`` once no process of it is left).
        received, total: bytes downloaded so far (a resumed download starts at what it had) and expected.
        progress: ``received / total`` (0 while the total is unknown).
        message: one line once finished (GASACore's reason for a failure or refusal).
        stderrTail: the engine's last stderr lines (the detail of a failure).
    """

    def __init__(
        self,
        runner: ProcessRunner,
        command: Sequence[str],
        env: Mapping[str, str] | None,
        spec: str,
        *,
        onLog: Callable[[str], None] | None = None,
        onProgress: Callable[[str, float], None] | None = None,
    ) -> None:
        self.spec = spec
        self.onLog = onLog or (lambda line: None)
        self.onProgress = onProgress or (lambda stage, fraction: None)
        self.state = JobState.RUNNING
        self.stage = "download"
        self.received, self.total, self.progress = 0, None, 0.0
        self.message = ""
        self.engineError = ""
        self.stderrTail: list[str] = []
        self.command = list(command)
        self.process = BackgroundProcess(runner, self.command, env)

    @property
    def runner(self) -> ProcessRunner:
        return self.process.runner

    @property
    def finished(self) -> bool:
        return self.state not in (JobState.RUNNING, JobState.CANCELLING)

    @property
    def progressText(self) -> str:
        """``download: 12.3 of 233.7 MB (5%)`` (:func:`downloadText`)."""
        return downloadText(self.received, self.total)

    def _log(self, line: str) -> None:
        logger.info("%s", line)
        self.onLog(line)

    def _readOutput(self) -> None:
        for line in self.process.readLines():
            event = parse_event_line(line)
            if isinstance(event, DownloadEvent):
                self.received, self.total = event.received, event.total
                self.progress = event.fraction or 0.0
                self.onProgress(self.stage, self.progress)
            elif isinstance(event, ErrorEvent):
                self.engineError = event.message
            elif isinstance(event, LogEvent):
                self._log(event.message)
        for line in self.process.readErrorLines():
            self.stderrTail = [*self.stderrTail[-19:], line]
            self._log(line)

    def poll(self) -> bool:
        """Read progress; ``True`` once finished (installed, failed or cancelled). Never blocks."""
        if self.finished:
            return True
        if self.state == JobState.CANCELLING:
            if self.process.stopped():
                self._finish(JobState.CANCELLED, self.message)
            return self.finished
        startError = self.process.startError
        if startError:
            self._finish(JobState.FAILED, f"could not start the download ({self.command[0]}): {startError}")
            return True
        self._readOutput()
        code = self.process.exitCode()
        if code is None:
            return False
        self._readOutput()
        if code == 0:
            self.progress = 1.0
            self.onProgress(self.stage, 1.0)
            self._finish(JobState.SUCCEEDED, f"{self.spec} downloaded, checked and installed")
        elif code == CANCELLED_EXIT_CODE:
            self._finish(JobState.CANCELLED, f"the download of {self.spec} was stopped; it resumes next time")
        else:
            detail = self.engineError or next((s for s in reversed(self.stderrTail) if s.strip()), "no message")
            self._finish(JobState.FAILED, f"the download of {self.spec} failed: {detail}")
        return True

    def _finish(self, state: JobState, message: str) -> None:
        self.state, self.message = state, message
        self._log(message)

    def cancel(self) -> None:
        """Start stopping the download (the process tree); returns at once. The partial file is kept."""
        if self.state != JobState.RUNNING:
            return
        self.state = JobState.CANCELLING
        self.message = f"download of {self.spec} cancelled; what arrived is kept and the next download resumes it"
        self._log(f"stopping the download of {self.spec}...")
        self.process.stop()

    def abandon(self) -> None:
        """Kill the download at once (the module is closing); never waits."""
        if not self.finished:
            self.process.killNow()
            self.state, self.message = JobState.CANCELLED, f"download of {self.spec} stopped: the module was closed"
