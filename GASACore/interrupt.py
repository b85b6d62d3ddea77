"""How a ``gasa-segment`` run is stopped from outside: SIGTERM / SIGINT, and session leadership.

:class:`Interrupt` turns the first SIGTERM or SIGINT into the sliding window's cancel signal (the run stops
within one window) or, outside the prediction and the writing of outputs, into
:class:`~GASACore.errors.Cancelled` at once. :func:`lead_new_session` makes the engine the leader of its own
session when :data:`GASACore.events.NEW_SESSION_ENV` asks for it (the Slicer module does), and says so in
a :class:`~GASACore.events.StartEvent`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from GASACore.errors import Cancelled
from GASACore.events import NEW_SESSION_ENV, Event, EventSink, ProgressEvent, Stage, StartEvent

__all__ = ["Interrupt", "InterruptibleSink", "lead_new_session"]


class Interrupt:
    """SIGTERM / SIGINT during a run: stop at the next safe point, within one sliding window.

    The first signal sets :attr:`event` (the sliding window's cancel signal, checked before every window
    batch). While the prediction runs, or while an output file is being written, that is all it does; at any
    other point it raises :class:`~GASACore.errors.Cancelled` at once. A second signal always raises at once.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.predicting = False
        self.completed = 0  #: inputs whose outputs are complete
        self.total = 0
        self._writing = 0
        self._listening = False
        self._previous: dict[int, Any] = {}

    @property
    def message(self) -> str:
        name = signal.Signals(self.signum).name if self.signum else "a signal"
        return f"interrupted by {name}"

    def outcome(self) -> str:
        """One line for the user: what was stopped and what was left."""
        if self.completed:
            return (
                f"{self.message} after {self.completed} of {self.total} inputs; their outputs are complete, "
                "nothing else was written"
            )
        return f"{self.message}; stopped without writing an output"

    def install(self) -> None:
        """Handle the signals (main thread only; elsewhere the default handlers stay)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._listening = True

    def restore(self) -> None:
        """Put the previous handlers back."""
        self._listening = False
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def stop_listening(self) -> None:
        """Ignore further signals while the run reports how it ended."""
        self._listening = False

    def _handle(self, signum: int, _frame: object) -> None:
        if not self._listening:
            return
        first = not self.event.is_set()
        if first:
            self.signum = signum
            self.event.set()
        if first and (self.predicting or self._writing):
            return
        raise Cancelled(self.message)

    def check(self) -> None:
        """Raise :class:`~GASACore.errors.Cancelled` if a signal arrived."""
        if self.event.is_set():
            raise Cancelled(self.message)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A block that a first signal does not interrupt (writing an output): check afterwards."""
        self._writing += 1
        try:
            yield
        finally:
            self._writing -= 1


class InterruptibleSink(EventSink):
    """Forwards events; every progress report is a point where a pending interrupt stops the run."""

    def __init__(self, sink: EventSink, interrupt: Interrupt) -> None:
        self._sink = sink
        self._interrupt = interrupt

    def emit(self, event: Event) -> None:
        if isinstance(event, ProgressEvent):
            self._interrupt.check()
            self._interrupt.predicting = event.stage is Stage.PREDICT and event.fraction < 1.0
        self._sink.emit(event)

    def close(self) -> None:
        self._sink.close()


def lead_new_session() -> None:
    """With :data:`~GASACore.events.NEW_SESSION_ENV` set: lead a new session, then write the start event.

    A launcher between the caller and this process (Slicer's ``PythonSlicer`` starts ``python-real`` as its
    child) hides this process from the caller; the caller stops the group named in the event instead.
    """
    if os.environ.get(NEW_SESSION_ENV) != "1":
        return
    pgid = None
    if hasattr(os, "setsid"):
        with contextlib.suppress(PermissionError):  # already a group leader, e.g. started with its own session
            os.setsid()
        pgid = os.getpgrp()
    sys.stdout.write(StartEvent(os.getpid(), pgid).to_json_line() + "\n")
    sys.stdout.flush()
