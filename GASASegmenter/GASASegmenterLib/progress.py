"""Parsing of ``gasa-segment --progress json`` output: one JSON object per line on stdout."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

__all__ = ["STAGES", "ProgressEvent", "overallFraction", "parseProgressLine"]

logger = logging.getLogger(__name__)

#: The engine's stages in order, with the share of the whole run each one stands for.
STAGES: dict[str, tuple[float, float]] = {
    "load": (0.0, 0.05),
    "preprocess": (0.05, 0.15),
    "predict": (0.15, 0.9),
    "export": (0.9, 1.0),
}


@dataclass(frozen=True)
class ProgressEvent:
    """One event of the engine.

    Attributes:
        kind: ``"progress"``, ``"done"``, ``"error"``, ``"case"`` or ``"log"`` (a line that is not JSON).
        stage: the stage of a progress event (``load``, ``preprocess``, ``predict``, ``export``).
        fraction: the stage's own fraction done, 0-1.
        overall: the whole run's fraction done, 0-1.
        output: the written label map (``done``).
        message: the error message (``error``) or the raw line (``log``).
    """

    kind: str
    stage: str = ""
    fraction: float = 0.0
    overall: float = 0.0
    output: str = ""
    message: str = ""


def overallFraction(stage: str, fraction: float) -> float:
    """Map a stage's own fraction onto the whole run, using :data:`STAGES`."""
    low, high = STAGES.get(stage, (0.0, 1.0))
    return low + (high - low) * min(max(float(fraction), 0.0), 1.0)


def parseProgressLine(line: str) -> ProgressEvent | None:
    """Turn one stdout line into an event; ``None`` for blank lines.

    Lines that are not JSON objects with an ``event`` key come back as ``kind="log"`` so that they can
    still be shown in the log.
    """
    text = line.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return ProgressEvent("log", message=text)
    if not isinstance(data, dict) or "event" not in data:
        return ProgressEvent("log", message=text)
    kind = str(data["event"])
    if kind == "progress":
        stage = str(data.get("stage", ""))
        try:
            fraction = float(data.get("fraction", 0.0))
        except (TypeError, ValueError):
            logger.warning("progress line with a non-numeric fraction: %s", text)
            return ProgressEvent("log", message=text)
        overall = data.get("overall")
        overall = float(overall) if isinstance(overall, (int, float)) else overallFraction(stage, fraction)
        return ProgressEvent("progress", stage=stage, fraction=fraction, overall=overall)
    if kind == "done":
        return ProgressEvent("done", output=str(data.get("output", "")), overall=1.0)
    if kind == "error":
        return ProgressEvent("error", message=str(data.get("message", "unknown error")))
    return ProgressEvent(kind, message=text)
