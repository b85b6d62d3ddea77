"""The progress and event contract of a run: stages, event records, and their JSON lines.

Imports no torch: the Slicer module parses the engine's ``--progress json`` output with it in Slicer's own
process. One event is one JSON object on one line, keyed by ``"event"``::

    >>> line = ProgressEvent(Stage.PREDICT, 0.42).to_json_line()
    >>> line
    '{"event": "progress", "stage": "predict", "fraction": 0.42, "overall": 0.465}'
    >>> parse_event_line(line)
    ProgressEvent(stage=<Stage.PREDICT: 'predict'>, fraction=0.42, overall=0.465)
    >>> parse_event_line("Traceback (most recent call last):")
    LogEvent(message='Traceback (most recent call last):')

Whoever wants progress passes a :class:`ProgressSink`: any callable ``sink(stage, fraction)``. An
:class:`EventSink` is a progress sink that also receives the other events (the CLI's reporters are).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

from GASACore.enums import StrEnum

__all__ = [
    "NEW_SESSION_ENV",
    "STAGE_SPANS",
    "CaseEvent",
    "DoneEvent",
    "DownloadEvent",
    "ErrorEvent",
    "Event",
    "EventKind",
    "EventSink",
    "LogEvent",
    "ProgressEvent",
    "ProgressSink",
    "Stage",
    "StartEvent",
    "overall_fraction",
    "parse_event_line",
]


class Stage(StrEnum):
    """The steps of one segmentation, in order."""

    LOAD = "load"  #: model and image read, device resolved
    PREPROCESS = "preprocess"  #: nnU-Net's transpose, crop, normalisation, resampling
    PREDICT = "predict"  #: sliding-window prediction over folds and mirrors
    EXPORT = "export"  #: back to the input grid, label map written


#: The share of the whole run each stage stands for, as ``(start, end)`` fractions of the run.
STAGE_SPANS: Mapping[Stage, tuple[float, float]] = MappingProxyType(
    {
        Stage.LOAD: (0.0, 0.05),
        Stage.PREPROCESS: (0.05, 0.15),
        Stage.PREDICT: (0.15, 0.9),
        Stage.EXPORT: (0.9, 1.0),
    }
)


def overall_fraction(stage: Stage | str, fraction: float) -> float:
    """The whole run's fraction done when ``stage`` is ``fraction`` done (clamped to ``[0, 1]``).

    Examples::

        >>> overall_fraction("load", 0.0), overall_fraction(Stage.PREDICT, 0.5), overall_fraction("export", 2)
        (0.0, 0.525, 1.0)
    """
    low, high = STAGE_SPANS[Stage(stage)]
    return low + (high - low) * min(max(float(fraction), 0.0), 1.0)


class ProgressSink(Protocol):
    """Receives progress: ``sink(stage, fraction)`` with the stage's own fraction done, ``0 <= fraction <= 1``.

    Used by :func:`GASACore.segment` (``progress=``), :func:`~GASACore.inference.predict_sliding_window` and
    the CLI's reporters. A plain function ``def show(stage, fraction): ...`` is one.
    """

    def __call__(self, stage: Stage, fraction: float) -> None: ...


class EventKind(StrEnum):
    """The ``"event"`` key of a JSON line."""

    PROGRESS = "progress"
    CASE = "case"
    DOWNLOAD = "download"
    DONE = "done"
    ERROR = "error"
    LOG = "log"
    START = "start"


#: Set to ``1`` in the environment of a ``gasa-segment`` that a program (the Slicer module) will want to
#: stop as a whole: the engine then makes itself the leader of a new session (POSIX) at start and writes a
#: :class:`StartEvent` as its first line, so that the program can stop it and everything it started even
#: when a launcher (Slicer's ``PythonSlicer``) sits in between.
NEW_SESSION_ENV = "GASA_ENGINE_NEW_SESSION"


class _EventRecord:
    """JSON form shared by the event records."""

    kind: ClassVar[EventKind]

    def to_dict(self) -> dict[str, Any]:
        """``{"event": kind, field: value, ...}``; fields that are ``None`` are left out."""
        values = {k: v for k, v in asdict(self).items() if v is not None}  # type: ignore[call-overload]
        return {"event": self.kind.value, **values}

    def to_json_line(self) -> str:
        """One line of JSON (no newline)."""
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class ProgressEvent(_EventRecord):
    """``fraction`` of ``stage`` is done; ``overall`` is the whole run's fraction (from :data:`STAGE_SPANS`)."""

    kind: ClassVar[EventKind] = EventKind.PROGRESS
    stage: Stage
    fraction: float
    overall: float = field(default=math.nan)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float)):
            raise ValueError(f"fraction must be a number in [0, 1], got {self.fraction!r}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fraction must be a number in [0, 1], got {self.fraction!r}")
        if math.isnan(self.overall):
            object.__setattr__(self, "overall", round(overall_fraction(self.stage, self.fraction), 6))


@dataclass(frozen=True)
class CaseEvent(_EventRecord):
    """Input ``index`` (from 0) of ``total`` starts; ``name`` is the case name outputs are named after."""

    kind: ClassVar[EventKind] = EventKind.CASE
    name: str
    index: int
    total: int


@dataclass(frozen=True)
class DownloadEvent(_EventRecord):
    """``received`` of ``total`` bytes of model ``model`` (``ID@VERSION``) are downloaded (``total`` ``None``: unknown).

    ``fraction`` is ``received / total`` (``None`` when the total is unknown); a resumed download starts at
    the bytes it already had. Example line::

        {"event": "download", "model": "totalseg-organs@2.0.0", "received": 1048576, "total": 233742255,
         "fraction": 0.0045}
    """

    kind: ClassVar[EventKind] = EventKind.DOWNLOAD
    model: str
    received: int
    total: int | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        if self.fraction is None and self.total:
            object.__setattr__(self, "fraction", round(min(self.received / self.total, 1.0), 4))


@dataclass(frozen=True)
class DoneEvent(_EventRecord):
    """A label map was written to ``output``, for ``case``, on ``device``, in ``seconds``.

    On the CPU also ``backend``, what ran the network (``onednn``, ``eager`` or ``openvino``), and
    ``backend_reason``, why (``auto``'s choice or a fallback's cause).
    """

    kind: ClassVar[EventKind] = EventKind.DONE
    output: str
    case: str | None = None
    device: str | None = None
    seconds: float | None = None
    backend: str | None = None
    backend_reason: str | None = None


@dataclass(frozen=True)
class ErrorEvent(_EventRecord):
    """A case (or the whole run, ``case=None``) failed; ``message`` says what was expected and given."""

    kind: ClassVar[EventKind] = EventKind.ERROR
    message: str
    case: str | None = None


@dataclass(frozen=True)
class LogEvent(_EventRecord):
    """A line to show as it is: anything on the engine's stdout that is not an event."""

    kind: ClassVar[EventKind] = EventKind.LOG
    message: str


@dataclass(frozen=True)
class StartEvent(_EventRecord):
    """The engine process ``pid`` started; it leads process group ``pgid`` (``None`` where there are none).

    Written first when :data:`NEW_SESSION_ENV` is set: whoever stops the run signals that group.
    """

    kind: ClassVar[EventKind] = EventKind.START
    pid: int
    pgid: int | None = None


#: Any one event.
Event = ProgressEvent | CaseEvent | DownloadEvent | DoneEvent | ErrorEvent | LogEvent | StartEvent
_RECORDS: Mapping[str, type[_EventRecord]] = {
    cls.kind.value: cls
    for cls in (ProgressEvent, CaseEvent, DownloadEvent, DoneEvent, ErrorEvent, LogEvent, StartEvent)
}
_TYPES: Mapping[str, tuple[type, ...]] = {
    "stage": (str,),
    "fraction": (int, float),
    "overall": (int, float),
    "name": (str,),
    "index": (int,),
    "total": (int,),
    "output": (str,),
    "case": (str,),
    "device": (str,),
    "seconds": (int, float),
    "backend": (str,),
    "backend_reason": (str,),
    "message": (str,),
    "pid": (int,),
    "pgid": (int,),
    "model": (str,),
    "received": (int,),
}


def parse_event_line(line: str) -> Event | None:
    """The event on one line of engine output; ``None`` for a blank line.

    A line that is not a JSON object with a known ``"event"`` and well-typed fields becomes a
    :class:`LogEvent` holding the line, so that nothing the engine printed is lost. Keys an event does not
    know are ignored (a newer engine may add some).
    """
    text = line.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return LogEvent(text)
    kind = data.get("event") if isinstance(data, dict) else None
    record = _RECORDS.get(kind) if isinstance(kind, str) else None
    if record is None:
        return LogEvent(text)
    names = {f.name for f in fields(record)}  # type: ignore[arg-type]
    values = {k: v for k, v in data.items() if k in names}
    for key, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, _TYPES[key])):
            return LogEvent(text)
    try:
        return record(**values)  # type: ignore[return-value]
    except (TypeError, ValueError):  # a missing field, an unknown stage, a fraction outside [0, 1]
        return LogEvent(text)


class EventSink:
    """Receives every event of a run; calling it with ``(stage, fraction)`` reports progress.

    This base class drops everything (the CLI's ``--progress none``); reporters override :meth:`emit`.
    """

    def emit(self, event: Event) -> None:
        """Handle one event."""

    def __call__(self, stage: Stage | str, fraction: float) -> None:
        self.emit(ProgressEvent(Stage(stage), min(max(float(fraction), 0.0), 1.0)))

    def close(self) -> None:
        """No more events."""
