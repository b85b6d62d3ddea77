"""Progress reporters for ``gasa-segment``: JSON lines for programs, a tqdm bar for people, or nothing."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

__all__ = ["BarProgress", "JsonProgress", "NullProgress", "Reporter", "make_reporter"]

_STAGE_SPAN = {"load": (0.0, 0.05), "preprocess": (0.05, 0.15), "predict": (0.15, 0.9), "export": (0.9, 1.0)}


def overall_fraction(stage: str, fraction: float) -> float:
    """Map a stage's own fraction onto the whole run (load 5%, preprocess 10%, predict 75%, export 10%)."""
    low, high = _STAGE_SPAN.get(stage, (0.0, 1.0))
    return low + (high - low) * min(max(fraction, 0.0), 1.0)


class Reporter:
    """Receives progress, case boundaries, results and errors."""

    def case(self, name: str, index: int, total: int) -> None:
        """A new input starts."""

    def __call__(self, stage: str, fraction: float) -> None:
        """``fraction`` of ``stage`` is done."""

    def done(self, output: str, **extra: Any) -> None:
        """One output was written."""

    def error(self, message: str, **extra: Any) -> None:
        """One input failed."""

    def close(self) -> None:
        """No more events."""


class NullProgress(Reporter):
    """Reports nothing."""


class JsonProgress(Reporter):
    """One JSON object per line, e.g. ``{"event": "progress", "stage": "predict", "fraction": 0.42}``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._last: tuple[str, float] | None = None

    def _emit(self, **event: Any) -> None:
        self._stream.write(json.dumps(event) + "\n")
        self._stream.flush()

    def case(self, name: str, index: int, total: int) -> None:
        self._emit(event="case", name=name, index=index, total=total)

    def __call__(self, stage: str, fraction: float) -> None:
        rounded = round(float(fraction), 3)
        if self._last == (stage, rounded):
            return
        self._last = (stage, rounded)
        self._emit(event="progress", stage=stage, fraction=rounded, overall=round(overall_fraction(stage, fraction), 3))

    def done(self, output: str, **extra: Any) -> None:
        self._emit(event="done", output=output, **extra)

    def error(self, message: str, **extra: Any) -> None:
        self._emit(event="error", message=message, **extra)


class BarProgress(Reporter):
    """A tqdm progress bar per input on stderr."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._bar: Any = None

    def case(self, name: str, index: int, total: int) -> None:
        self.close()
        self._bar = self._tqdm(total=100, desc=f"[{index + 1}/{total}] {name}", unit="%", leave=True)

    def __call__(self, stage: str, fraction: float) -> None:
        if self._bar is None:
            self.case("input", 0, 1)
        self._bar.set_postfix_str(stage)
        self._bar.n = round(100 * overall_fraction(stage, fraction), 1)
        self._bar.refresh()

    def done(self, output: str, **extra: Any) -> None:
        if self._bar is not None:
            self._bar.n = 100
            self._bar.refresh()
        self.close()

    def error(self, message: str, **extra: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_reporter(mode: str) -> Reporter:
    """``json``, ``bar``, ``none``, or ``auto`` (a bar when stderr is a terminal)."""
    if mode == "json":
        return JsonProgress()
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        return BarProgress()
    return NullProgress()
