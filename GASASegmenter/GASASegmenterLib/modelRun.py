"""One Segment click as the user sees it: download the model if it is not here, read it, segment.

:class:`ModelRun` moves through up to three background processes, each started only when the one before
succeeded: ``gasa-models fetch`` (:class:`~GASASegmenterLib.modelDownload.ModelDownload`), ``gasa-segment
--describe-model`` for the labels (skipped when the caller already has them) and the segmentation
(:class:`~GASASegmenterLib.job.SegmentationJob`). It is polled and cancelled like a segmentation job, and
Cancel stops whichever step runs; the scene changes only when the segmentation's result is complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from GASACore.labels import Label

from .catalog import ModelEntry, labelsFromDescription
from .engineQuery import EngineQuery
from .job import JobState, SegmentationJob
from .modelDownload import ModelDownload
from .processRunner import ProcessRunner

__all__ = ["ModelRun", "RunSteps"]

logger = logging.getLogger(__name__)


class RunSteps:
    """How a :class:`ModelRun` starts its steps (the logic provides them; tests may too).

    Args:
        download: starts ``gasa-models fetch`` of the entry; ``None`` when the model is here already.
        read: starts the engine's description of the (installed) model; ``None`` when the labels are known.
        segment: starts the segmentation with the model's labels.
    """

    def __init__(
        self,
        *,
        download: Callable[[], ModelDownload] | None,
        read: Callable[[], EngineQuery] | None,
        segment: Callable[[Sequence[Label]], SegmentationJob],
    ) -> None:
        self.download, self.read, self.segment = download, read, segment


class ModelRun:
    """Download (when needed), read and segment with one model; the interface of a segmentation job.

    Attributes:
        entry: the model.
        state: a :class:`~GASASegmenterLib.job.JobState`; :attr:`finished` once no process of it is left.
        stage: ``download``, ``read``, then the engine's stages (``load`` ... ``export``).
        message: one line once finished (the failing step's reason).
        download, reading, segmentation: the steps started so far.
    """

    def __init__(
        self,
        entry: ModelEntry,
        steps: RunSteps,
        *,
        labels: Sequence[Label] | None = None,
        onLog: Callable[[str], None] | None = None,
    ) -> None:
        self.entry = entry
        self.state = JobState.RUNNING
        self.message = ""
        self.labels = tuple(labels) if labels is not None else None
        self.download: ModelDownload | None = None
        self.reading: EngineQuery | None = None
        self.segmentation: SegmentationJob | None = None
        self._steps = steps
        self._onLog = onLog or (lambda line: None)
        self._readingStage = False
        if steps.download is not None:
            self.download = steps.download()
        else:
            self._next()

    # -- what the panel and the self-test read ---------------------------------------------------------------

    @property
    def current(self) -> ModelDownload | EngineQuery | SegmentationJob | None:
        """The step running now (or the last one)."""
        return self.segmentation or self.reading or self.download

    @property
    def finished(self) -> bool:
        return self.state not in (JobState.RUNNING, JobState.CANCELLING)

    @property
    def stage(self) -> str:
        if self.segmentation is not None:
            return self.segmentation.stage
        return "read" if self.reading is not None else "download"

    @property
    def progress(self) -> float:
        step = self.segmentation or self.download
        return step.progress if step is not None else 0.0

    @property
    def progressText(self) -> str:
        """The stage label: MB for a download, the stage and percentage otherwise."""
        if self.segmentation is None and self.reading is None and self.download is not None:
            return self.download.progressText
        if self.segmentation is None:
            return f"reading {self.entry.name}..."
        return f"{self.stage}: {100 * self.progress:.0f}%"

    @property
    def segmentationNode(self) -> Any:
        return self.segmentation.segmentationNode if self.segmentation is not None else None

    @property
    def stderrTail(self) -> list[str]:
        step = self.segmentation or self.download
        return list(step.stderrTail) if step is not None else []

    @property
    def runner(self) -> ProcessRunner | None:
        step = self.current
        return step.runner if step is not None else None

    @property
    def process(self) -> Any:
        step = self.current
        return step.process if step is not None else None

    @property
    def tempDir(self) -> Path | None:
        return self.segmentation.tempDir if self.segmentation is not None else None

    @property
    def inputVolume(self) -> Any:
        return self.segmentation.inputVolume if self.segmentation is not None else None

    # -- moving on -----------------------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        logger.info("%s", line)
        self._onLog(line)

    def _finish(self, state: JobState, message: str, *, logged: bool = False) -> None:
        self.state, self.message = state, message
        if not logged:
            self._log(message)

    def _next(self) -> None:
        """Start the read (unless the labels are known) or the segmentation."""
        if self.labels is None and self.reading is None and self._steps.read is not None:
            self.reading = self._steps.read()
            self._log(f"reading {self.entry.name}")
            return
        if self.labels is None:
            self._finish(JobState.FAILED, f"the labels of {self.entry.name} are not known")
            return
        try:
            self.segmentation = self._steps.segment(self.labels)
        except (OSError, ValueError) as err:
            self._finish(JobState.FAILED, f"segmentation could not start: {err}")

    def poll(self) -> bool:
        """Move the running step on; start the next when it succeeded. ``True`` once finished. Never blocks."""
        if self.finished:
            return True
        step = self.current
        if step is None or not step.poll():
            return False
        if step is self.segmentation:
            self._finish(step.state, step.message, logged=True)
        elif self.state == JobState.CANCELLING:
            if step is self.download:
                self._finish(JobState.CANCELLED, step.message, logged=True)
            else:
                self._finish(JobState.CANCELLED, "cancelled before the segmentation started; the scene was not changed")
        elif step is self.download:
            if step.state != JobState.SUCCEEDED:
                self._finish(step.state, step.message, logged=True)
            else:
                self._next()
        elif step.result is None:
            self._finish(JobState.FAILED, f"{self.entry.name} cannot be used: {step.error}")
        else:
            try:
                self.labels = labelsFromDescription(step.result)
            except ValueError as err:
                self._finish(JobState.FAILED, f"{self.entry.name} cannot be used: {err}")
                return True
            self._next()
        return self.finished

    def cancel(self) -> None:
        """Start stopping the running step; returns at once (later polls finish the stop)."""
        if self.state != JobState.RUNNING:
            return
        self.state = JobState.CANCELLING
        step = self.current
        if step is not None:
            step.cancel()

    def abandon(self) -> None:
        """Kill whatever runs at once (the module is closing); never waits."""
        if self.finished:
            return
        step = self.current
        if step is not None:
            step.abandon()
        self.state, self.message = JobState.CANCELLED, "stopped: the module was closed"
