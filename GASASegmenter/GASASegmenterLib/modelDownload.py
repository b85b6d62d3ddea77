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

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from GASACore.events import DownloadEvent

from .engineProcessJob import EngineProcessJob, JobState
from .processRunner import ProcessRunner

__all__ = ["ModelDownload", "downloadText", "fetchCommand", "importCommand", "modelsCommand"]

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


class ModelDownload(EngineProcessJob):
    """``gasa-models fetch`` of one catalogue entry in a background process (an :class:`EngineProcessJob`).

    Attributes:
        spec: the entry's ``ID@VERSION``.
        received, total: bytes downloaded so far (a resumed download starts at what it had) and expected.
        progress: ``received / total`` (0 while the total is unknown).
        (state, message, engineError, stderrTail: as every :class:`EngineProcessJob`.)
    """

    processName = "download"

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
        super().__init__(runner, command, env, stage="download", onLog=onLog, onProgress=onProgress)
        self.spec = spec
        self.received, self.total = 0, None

    @property
    def progressText(self) -> str:
        """``download: 12.3 of 233.7 MB (5%)`` (:func:`downloadText`)."""
        return downloadText(self.received, self.total)

    def _handleEvent(self, event: object) -> None:
        if isinstance(event, DownloadEvent):
            self.received, self.total = event.received, event.total
            self.progress = event.fraction or 0.0
            self.onProgress(self.stage, self.progress)
        else:
            super()._handleEvent(event)

    def _onExit(self, code: int) -> None:
        if code == 0:
            self.progress = 1.0
            self.onProgress(self.stage, 1.0)
            self._finish(JobState.SUCCEEDED, f"{self.spec} downloaded, checked and installed")
        elif code == CANCELLED_EXIT_CODE:
            self._finish(JobState.CANCELLED, f"the download of {self.spec} was stopped; it resumes next time")
        else:
            self._finish(JobState.FAILED, f"the download of {self.spec} failed: {self.failureDetail()}")

    def _cancelText(self) -> tuple[str, str]:
        return (
            f"stopping the download of {self.spec}...",
            f"download of {self.spec} cancelled; what arrived is kept and the next download resumes it",
        )

    def abandon(self, message: str = "") -> None:
        """Kill the download at once (the module is closing); never waits. The partial file is kept."""
        super().abandon(message or f"download of {self.spec} stopped: the module was closed")
