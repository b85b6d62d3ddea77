"""One background command (the engine, pip) that can be stopped as a whole without blocking the caller.

:class:`BackgroundProcess` starts a command through a :class:`~GASASegmenterLib.processRunner.ProcessRunner`
with :data:`GASACore.events.NEW_SESSION_ENV` set, so that the engine leads a session of its own and names
its process group in its first line (a :class:`GASACore.events.StartEvent`, taken out of the output here).
:meth:`BackgroundProcess.stop` starts stopping everything of the run, :meth:`BackgroundProcess.stopped`
moves the stop on (SIGTERM, then SIGKILL after the grace period) and says when nothing is left: both
return at once, for a timer in the Slicer application.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence

from GASACore.events import NEW_SESSION_ENV, StartEvent, parse_event_line

from .processRunner import ProcessRunner
from .processTree import TERMINATE_GRACE_SECONDS, TreeStopper

__all__ = ["BackgroundProcess"]

logger = logging.getLogger(__name__)


class BackgroundProcess:
    """A command started through ``runner``; output read, exit observed and the whole tree stopped, no waits.

    Attributes:
        enginePid, engineGroup: the engine's process id and group, from its start event (``None`` before it,
            and for commands that are not the engine).
    """

    def __init__(
        self,
        runner: ProcessRunner,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        grace: float = TERMINATE_GRACE_SECONDS,
    ) -> None:
        self.runner = runner
        self.command = list(command)
        self.enginePid: int | None = None
        self.engineGroup: int | None = None
        self._grace = grace
        self._startError = ""
        self._stopper: TreeStopper | None = None
        environment = {**(dict(env) if env is not None else dict(os.environ)), NEW_SESSION_ENV: "1"}
        try:
            runner.start(self.command, environment)
        except OSError as err:
            self._startError = str(err) or type(err).__name__

    @property
    def startError(self) -> str:
        """Why ``command[0]`` could not be started (``""`` when it started, or while it is starting)."""
        return self._startError or self.runner.startError()

    @property
    def stopping(self) -> bool:
        return self._stopper is not None

    def readLines(self) -> list[str]:
        """New complete stdout lines, without the engine's start event."""
        lines = []
        for line in self.runner.readLines():
            if '"start"' in line:
                event = parse_event_line(line)
                if isinstance(event, StartEvent):
                    self._onStart(event)
                    continue
            lines.append(line)
        return lines

    def readErrorLines(self) -> list[str]:
        return self.runner.readErrorLines()

    def _onStart(self, event: StartEvent) -> None:
        self.enginePid, self.engineGroup = event.pid, event.pgid
        logger.info("engine process %d (group %s) started", event.pid, event.pgid)
        if self._stopper is not None:
            self._stopper.add(event.pid, event.pgid)

    def exitCode(self) -> int | None:
        """The command's exit code once it ended by itself; ``None`` while it runs or once it is being stopped."""
        return None if self._stopper is not None else self.runner.exitCode()

    def stop(self) -> None:
        """Start stopping the command and everything it started; returns at once (see :meth:`stopped`)."""
        if self._stopper is not None:
            return
        self._stopper = TreeStopper(
            self.runner.pid,
            groups=[self.engineGroup] if self.engineGroup else [],
            pids=[self.enginePid] if self.enginePid else [],
            grace=self._grace,
        )
        self._stopper.begin()
        if self.runner.pid is None:  # still starting (or could not start): nothing else to signal yet
            self.runner.kill()

    def stopped(self) -> bool:
        """Move the stop on; ``True`` once no process of the command is left. Never blocks."""
        if self._stopper is None:
            return False
        self.readLines()  # a start event read late still names the engine's group
        self.readErrorLines()
        self.runner.exitCode()  # lets the runner reap its child
        done = self._stopper.poll()
        if done:
            self.runner.kill()
        return done

    def killNow(self) -> None:
        """Kill everything at once without waiting (the application is closing)."""
        if self._stopper is None:
            self._stopper = TreeStopper(
                self.runner.pid,
                groups=[self.engineGroup] if self.engineGroup else [],
                pids=[self.enginePid] if self.enginePid else [],
            )
        self._stopper.killNow()
        self.runner.kill()

    def stopAndWait(self, timeout: float = 10.0, interval: float = 0.02) -> bool:
        """Blocking :meth:`stop` for scripts and tests; ``True`` once everything is gone within ``timeout``."""
        self.stop()
        deadline = time.monotonic() + timeout
        while not self.stopped():
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)
        return True
