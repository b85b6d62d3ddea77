"""Progress and cancel callbacks of a prediction: monotone fractions, one cancel check per window batch."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from GASACore.errors import Cancelled
from GASACore.events import ProgressSink, Stage

__all__ = ["CancelSignal", "ProgressCounter", "cancel_checker"]

logger = logging.getLogger(__name__)

#: A callable returning ``True`` once the run should stop, or a ``threading.Event`` that gets set.
CancelSignal = Callable[[], bool] | threading.Event


class ProgressCounter:
    """Counts units of work done and reports them as monotone fractions to a :class:`~GASACore.events.ProgressSink`.

    Fractions never go back, even when a run restarts after a CUDA out-of-memory fallback, and the last
    one reported is exactly 1.0.

    Args:
        sink: receives ``(stage, fraction)``; ``None`` reports nothing.
        total: units of work (windows x folds); 0 means the work is done at once.
        stage: the stage passed to the sink.
    """

    def __init__(self, sink: ProgressSink | None, total: int, stage: Stage = Stage.PREDICT) -> None:
        if total < 0:
            raise ValueError(f"total work must be >= 0, got {total!r}")
        self._sink = sink
        self._total = total
        self._stage = stage
        self._done = 0
        self._last = -1.0

    def restart(self) -> None:
        """Count from zero again (a retry); fractions below the last one reported are not sent again."""
        self._done = 0

    def start(self) -> None:
        """Report the starting fraction (0.0 on a fresh run)."""
        self._emit(0.0 if self._total else 1.0)

    def advance(self, units: int) -> None:
        """Add ``units`` of work done and report the new fraction (capped below 1.0 until :meth:`finish`)."""
        self._done += units
        if self._total:
            self._emit(min(self._done / self._total, 1.0))

    def finish(self) -> None:
        """Report 1.0 unless already reported."""
        self._emit(1.0)

    def _emit(self, fraction: float) -> None:
        if self._sink is None or fraction <= self._last:
            return
        self._last = fraction
        self._sink(self._stage, fraction)


def cancel_checker(cancel: CancelSignal | None) -> Callable[[], None]:
    """A function that raises :class:`~GASACore.errors.Cancelled` once ``cancel`` is set.

    Args:
        cancel: a ``threading.Event`` (or anything with ``is_set()``), a callable returning ``True`` to
            cancel, or ``None`` (never cancelled).

    Returns:
        ``check()``: returns when the run may go on, raises ``Cancelled`` otherwise.

    Raises:
        ValueError: ``cancel`` is neither an event, a callable nor ``None``.
    """
    if cancel is None:
        return lambda: None
    is_set = getattr(cancel, "is_set", None)
    if is_set is None or not callable(is_set):
        if not callable(cancel):
            raise ValueError(f"cancel must be a threading.Event, a callable returning bool or None, got {cancel!r}")
        is_set = cancel

    def check() -> None:
        if is_set():
            logger.info("prediction cancelled")
            raise Cancelled("the prediction was cancelled")

    return check
