"""Event sinks of ``gasa-segment``: JSON lines for programs, a tqdm bar for people, or nothing.

The events and their JSON form are :mod:`GASACore.events`; this module only decides where they go.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from GASACore.enums import StrEnum
from GASACore.events import CaseEvent, DoneEvent, DownloadEvent, ErrorEvent, Event, EventSink, ProgressEvent

__all__ = ["BarSink", "JsonLinesSink", "ProgressMode", "make_sink"]


class ProgressMode(StrEnum):
    """``gasa-segment --progress``."""

    AUTO = "auto"  #: a bar when stderr is a terminal, else nothing
    JSON = "json"  #: one JSON event per line on stdout
    BAR = "bar"  #: a tqdm bar per input on stderr
    NONE = "none"


class JsonLinesSink(EventSink):
    """Writes each event as one JSON line, e.g. ``{"event": "progress", "stage": "predict", "fraction": 0.42, ...}``.

    Fractions are rounded to 0.001; a progress event equal to the previous one is not written again.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._last: tuple[str, float] | None = None

    def emit(self, event: Event) -> None:
        if isinstance(event, ProgressEvent):
            rounded = round(event.fraction, 3)
            if self._last == (event.stage, rounded):
                return
            self._last = (event.stage, rounded)
            event = ProgressEvent(event.stage, rounded, round(event.overall, 3))
        self._stream.write(event.to_json_line() + "\n")
        self._stream.flush()


class BarSink(EventSink):
    """A tqdm progress bar per input on stderr, showing the whole run's percentage and the stage."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._bar: Any = None

    def emit(self, event: Event) -> None:
        if isinstance(event, CaseEvent):
            self.close()
            self._bar = self._tqdm(total=100, desc=f"[{event.index + 1}/{event.total}] {event.name}", unit="%")
        elif isinstance(event, ProgressEvent):
            if self._bar is None:
                self.emit(CaseEvent("input", 0, 1))
            self._bar.set_postfix_str(event.stage.value)
            self._bar.n = round(100 * event.overall, 1)
            self._bar.refresh()
        elif isinstance(event, DoneEvent):
            if self._bar is not None:
                self._bar.n = 100
                self._bar.refresh()
            self.close()
        elif isinstance(event, ErrorEvent):
            self.close()
        elif isinstance(event, DownloadEvent):
            self._download(event)

    def _download(self, event: DownloadEvent) -> None:
        """A byte bar for a model download (``gasa-models fetch``, or ``gasa-segment -m ID`` on first use)."""
        if self._bar is None or getattr(self._bar, "desc", "") != event.model:
            self.close()
            self._bar = self._tqdm(total=event.total, desc=event.model, unit="B", unit_scale=True, unit_divisor=1024)
        self._bar.n = event.received
        self._bar.refresh()
        if event.total is not None and event.received >= event.total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_sink(mode: ProgressMode | str) -> EventSink:
    """The sink for ``--progress``: ``json``, ``bar``, ``none``, or ``auto`` (a bar when stderr is a terminal)."""
    mode = ProgressMode(mode)
    if mode is ProgressMode.JSON:
        return JsonLinesSink()
    if mode is ProgressMode.BAR or (mode is ProgressMode.AUTO and sys.stderr.isatty()):
        return BarSink()
    return EventSink()
