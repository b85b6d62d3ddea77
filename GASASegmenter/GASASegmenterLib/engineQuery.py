"""Ask the engine a question that it answers with one JSON object (``--check-device``, ``--describe-model``).

The question runs in the engine's own process (Slicer's process never imports torch), started through a
:class:`~GASASegmenterLib.backgroundProcess.BackgroundProcess` and polled like a segmentation, so the
application never waits on it; a query that takes too long is stopped the same non-blocking way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .backgroundProcess import BackgroundProcess
from .processRunner import ProcessRunner

__all__ = ["EngineQuery"]

logger = logging.getLogger(__name__)


class EngineQuery:
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
        self.command = list(command)
        self.result: dict[str, Any] | None = None
        self.error = ""
        self._finished = False
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        self.process = BackgroundProcess(runner, self.command, env)

    @property
    def runner(self) -> ProcessRunner:
        return self.process.runner

    @property
    def finished(self) -> bool:
        """``True`` once answered or failed and no process of the query is left."""
        return self._finished

    def _read(self) -> None:
        self._stdout += self.process.readLines()
        self._stderr = [*self._stderr, *self.process.readErrorLines()][-20:]

    def _stopBecause(self, error: str) -> None:
        self.error = error
        logger.warning("engine query %s failed: %s", " ".join(self.command[-3:]), error)
        self.process.stop()

    def poll(self) -> bool:
        """Read what the engine wrote; ``True`` once it has answered, failed or been stopped. Never blocks."""
        if self._finished:
            return True
        if self.process.stopping:
            self._finished = self.process.stopped()
            return self._finished
        startError = self.process.startError
        if startError:
            self._stopBecause(f"could not start the engine ({self.command[0]}): {startError}")
            return self.poll()
        self._read()
        code = self.process.exitCode()
        if code is None:
            if time.monotonic() > self._deadline:
                self._stopBecause(f"the engine did not answer within {self._timeout:g} s")
                return self.poll()
            return False
        self._read()
        self._finished = True
        lastError = next((line for line in reversed(self._stderr) if line.strip()), "")
        if code != 0:
            self.error = f"engine exit code {code}: {lastError or 'no message'}"
            return True
        answer = next((line for line in reversed(self._stdout) if line.strip()), "")
        try:
            data = json.loads(answer)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.error = f"the engine printed no JSON object (last line: {answer!r}); {lastError}".rstrip("; ")
            return True
        self.result = data
        return True

    def cancel(self) -> None:
        """Stop the engine (non-blocking: keep polling until :attr:`finished`); the query then has no result."""
        if not self._finished and not self.process.stopping:
            self._stopBecause("cancelled")

    def wait(self, interval: float = 0.05) -> dict[str, Any] | None:
        """Poll until finished (scripts and tests); returns :attr:`result`."""
        while not self.poll():
            time.sleep(interval)
        return self.result
