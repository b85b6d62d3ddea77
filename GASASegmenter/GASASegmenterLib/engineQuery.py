"""Ask the engine a question that it answers with one JSON object (``--check-device``, ``--describe-model``).

The question runs in the engine's own process (Slicer's process never imports torch) as an
:class:`~GASASegmenterLib.engineProcessJob.EngineProcessJob`, polled like a segmentation, so the application
never waits on it; a query that takes too long is stopped the same non-blocking way as a cancelled one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from GASACore.events import LogEvent

from .engineProcessJob import EngineProcessJob, JobState
from .processRunner import ProcessRunner

__all__ = ["EngineQuery"]

logger = logging.getLogger(__name__)


class EngineQuery(EngineProcessJob):
    """One engine command whose last stdout line is a JSON object.

    Attributes:
        result: the JSON object once the engine answered; ``None`` before, or when it failed.
        error: why there is no result (could not start, exit code and the engine's last error line, no JSON,
            no answer in time, cancelled); ``""`` otherwise.
    """

    def __init__(
        self,
        runner: ProcessRunner,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        timeout: float = 120.0,
    ) -> None:
        super().__init__(runner, command, env, stage="query")
        self.result: dict[str, Any] | None = None
        self._answer = ""
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout

    @property
    def error(self) -> str:
        return "" if self.state in (JobState.RUNNING, JobState.SUCCEEDED) else self.message

    def _handleEvent(self, event: object) -> None:
        if isinstance(event, LogEvent):
            self._answer = event.message  # the answer is the last line; it is not logged
        else:
            super()._handleEvent(event)

    def _finish(self, state: JobState, message: str) -> None:
        if state is not JobState.SUCCEEDED:
            logger.warning("engine query %s failed: %s", " ".join(self.command[-3:]), message)
        super()._finish(state, message)

    def poll(self) -> bool:
        """Read what the engine wrote; ``True`` once it has answered, failed or been stopped. Never blocks."""
        finished = super().poll()
        if not finished and self.state == JobState.RUNNING and time.monotonic() > self._deadline:
            self._stop(f"the engine did not answer within {self._timeout:g} s")
        return finished

    def _onExit(self, code: int) -> None:
        if code != 0:
            lastError = next((line for line in reversed(self.stderrTail) if line.strip()), "")
            self._finish(JobState.FAILED, f"engine exit code {code}: {self.engineError or lastError or 'no message'}")
            return
        try:
            data = json.loads(self._answer)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            lastError = next((line for line in reversed(self.stderrTail) if line.strip()), "")
            self._finish(
                JobState.FAILED,
                f"the engine printed no JSON object (last line: {self._answer!r}); {lastError}".rstrip("; "),
            )
            return
        self.result = data
        self._finish(JobState.SUCCEEDED, "answered")

    def _stop(self, why: str) -> None:
        """Stop the engine because of ``why`` (non-blocking); it becomes the query's :attr:`error`."""
        if self.state == JobState.RUNNING:
            self.state, self.message = JobState.CANCELLING, why
            self.process.stop()

    def cancel(self) -> None:
        """Stop the engine (non-blocking: keep polling until :attr:`finished`); the query then has no result."""
        self._stop("cancelled")

    def wait(self, interval: float = 0.05) -> dict[str, Any] | None:
        """Poll until finished (scripts and tests); returns :attr:`result`."""
        while not self.poll():
            time.sleep(interval)
        return self.result
