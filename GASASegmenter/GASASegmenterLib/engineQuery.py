"""Ask the engine a question that it answers with one JSON object (``gasa-segment --check-device``).

The question runs in the engine's own process (Slicer's process never imports torch), started by a
:class:`~GASASegmenterLib.processRunner.ProcessRunner` and polled like a segmentation, so the
application never waits on it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .processRunner import ProcessRunner

__all__ = ["EngineQuery"]

logger = logging.getLogger(__name__)


class EngineQuery:
    """One engine command whose last stdout line is a JSON object.

    Attributes:
        result: the JSON object once the engine answered; ``None`` before, or when it failed.
        error: why there is no result (could not start, exit code and the engine's last error line, no JSON,
            no answer in time); ``""`` otherwise.
    """

    def __init__(
        self,
        runner: ProcessRunner,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        timeout: float = 120.0,
    ) -> None:
        self.runner = runner
        self.command = list(command)
        self.result: dict[str, Any] | None = None
        self.error = ""
        self._finished = False
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        try:
            runner.start(self.command, env)
        except OSError as err:
            self._finish(f"could not start the engine ({self.command[0]}): {err}")

    @property
    def finished(self) -> bool:
        return self._finished

    def _read(self) -> None:
        self._stdout += self.runner.readLines()
        self._stderr = [*self._stderr, *self.runner.readErrorLines()][-20:]

    def _finish(self, error: str = "") -> None:
        self._finished = True
        self.error = error
        if error:
            logger.warning("engine query %s failed: %s", " ".join(self.command[-3:]), error)

    def poll(self) -> bool:
        """Read what the engine wrote; returns ``True`` once it has answered, failed or timed out."""
        if self._finished:
            return True
        self._read()
        code = self.runner.exitCode()
        if code is None:
            if time.monotonic() > self._deadline:
                self.runner.kill()
                self._finish(f"the engine did not answer within {self._timeout:g} s")
            return self._finished
        self._read()
        lastError = next((line for line in reversed(self._stderr) if line.strip()), "")
        if code != 0:
            self._finish(f"engine exit code {code}: {lastError or 'no message'}")
            return True
        answer = next((line for line in reversed(self._stdout) if line.strip()), "")
        try:
            data = json.loads(answer)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._finish(f"the engine printed no JSON object (last line: {answer!r}); {lastError}".rstrip("; "))
            return True
        self.result = data
        self._finish()
        return True

    def cancel(self) -> None:
        """Stop the engine; the query then has no result."""
        if not self._finished:
            self.runner.kill()
            self._finish("cancelled")

    def wait(self, interval: float = 0.05) -> dict[str, Any] | None:
        """Poll until finished (scripts and tests); returns :attr:`result`."""
        while not self.poll():
            time.sleep(interval)
        return self.result
