"""One engine process run for the module (a segmentation, a model download), polled and never blocking.

:class:`EngineProcessJob` owns what every such run shares: the background process, the state machine
(running -> cancelling -> cancelled; succeeded; failed), reading the engine's JSON events and its stderr
tail, the failure detail (the engine's own error event, else its last stderr line), Cancel (the whole
process tree, finished by a later :meth:`~EngineProcessJob.poll`) and :meth:`~EngineProcessJob.abandon`
when the module closes. A subclass says what its events mean (:meth:`~EngineProcessJob._handleEvent`),
what a finished process means (:meth:`~EngineProcessJob._onExit`) and what to release once it is over
(:meth:`~EngineProcessJob._onFinished`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence

from GASACore.events import ErrorEvent, LogEvent, parse_event_line

from .backgroundProcess import BackgroundProcess
from .processRunner import ProcessRunner

__all__ = ["EngineProcessJob", "JobState"]

logger = logging.getLogger(__name__)

#: How many of the engine's last stderr lines a job keeps (the detail of a failure).
STDERR_TAIL_LINES = 20


class JobState(str, enum.Enum):
    """Where a job is."""

    RUNNING = "running"
    CANCELLING = "cancelling"  #: Cancel was asked for; the engine's processes are being stopped
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class EngineProcessJob:
    """A background engine process and its state.

    Attributes:
        state: a :class:`JobState`; :attr:`finished` once it is neither running nor cancelling.
        stage: the run's current stage (the subclass names them).
        progress: fraction done, 0-1.
        message: one line once finished (GASACore's reason for a failure).
        engineError: the message of the engine's last ``error`` event ("" if none).
        stderrTail: the engine's last stderr lines.
    """

    #: What the process is, for "could not start the <what> (<program>): <reason>".
    processName = "engine"

    def __init__(
        self,
        runner: ProcessRunner,
        command: Sequence[str],
        env: Mapping[str, str] | None,
        *,
        stage: str,
        onLog: Callable[[str], None] | None = None,
        onProgress: Callable[[str, float], None] | None = None,
    ) -> None:
        self.onLog = onLog or (lambda line: None)
        self.onProgress = onProgress or (lambda stage, fraction: None)
        self.state = JobState.RUNNING
        self.stage = stage
        self.progress = 0.0
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
        """``True`` once succeeded, failed or cancelled, with no process of the run left."""
        return self.state not in (JobState.RUNNING, JobState.CANCELLING)

    def _log(self, line: str) -> None:
        logger.info("%s", line)
        self.onLog(line)

    def _handleEvent(self, event: object) -> None:
        """One parsed stdout event; the subclass handles its own and passes the rest here."""
        if isinstance(event, ErrorEvent):
            self.engineError = event.message
        elif isinstance(event, LogEvent):
            self._log(event.message)

    def _readOutput(self) -> None:
        for line in self.process.readLines():
            self._handleEvent(parse_event_line(line))
        for line in self.process.readErrorLines():
            self.stderrTail = [*self.stderrTail[-(STDERR_TAIL_LINES - 1) :], line]
            self._log(line)

    def failureDetail(self) -> str:
        """Why the engine failed: its error event, else its last non-empty stderr line, else ``no message``."""
        return self.engineError or next((s for s in reversed(self.stderrTail) if s.strip()), "no message")

    def poll(self) -> bool:
        """Read progress; once the process has ended, finish the job. ``True`` once finished. Never blocks."""
        if self.finished:
            return True
        if self.state == JobState.CANCELLING:
            if self.process.stopped():
                self._finish(JobState.CANCELLED, self.message)
            return self.finished
        startError = self.process.startError
        if startError:
            self._finish(JobState.FAILED, f"could not start the {self.processName} ({self.command[0]}): {startError}")
            return True
        self._readOutput()
        code = self.process.exitCode()
        if code is None:
            return False
        self._readOutput()
        self._onExit(code)
        return True

    def _onExit(self, code: int) -> None:
        """The process ended with ``code`` (negative: killed by a signal); the subclass must :meth:`_finish`."""
        raise NotImplementedError

    def _finish(self, state: JobState, message: str) -> None:
        self.state, self.message = state, message
        self._log(message)
        self._onFinished()

    def _onFinished(self) -> None:
        """Release what the run held (temporary files); called once, when the job finishes."""

    def _cancelText(self) -> tuple[str, str]:
        """``(what is logged now, the job's message once cancelled)``."""
        return "stopping the engine...", "cancelled"

    def cancel(self) -> None:
        """Start stopping the process and everything it started; returns at once.

        The job is :attr:`finished` (``CANCELLED``) once a later :meth:`poll` finds no process of it left.
        """
        if self.state != JobState.RUNNING:
            return
        stopping, self.message = self._cancelText()
        self.state = JobState.CANCELLING
        self._log(stopping)
        self.process.stop()

    def abandon(self, message: str = "stopped: the module was closed") -> None:
        """Kill the process at once (the module is closing) and release what the run held; never waits."""
        if self.finished:
            return
        self.process.killNow()
        self.state, self.message = JobState.CANCELLED, message
        self._onFinished()
