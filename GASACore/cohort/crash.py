"""Unexpected errors: one line for the user, the traceback in a log file (and on stderr with ``--verbose``).

A bug must not greet a clinician with forty lines of Python. :func:`crash_line` saves the traceback under
``$GASA_HOME/logs/`` and returns the line to print, e.g.::

    internal error: TypeError: unsupported operand (details in ~/.gasasegmenter/logs/gasa-segment-....log)
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path

from GASACore.home import gasa_home

__all__ = ["LOG_FOLDER", "crash_line", "save_traceback"]

logger = logging.getLogger(__name__)

#: Folder of the tracebacks, under the home folder.
LOG_FOLDER = "logs"


def save_traceback(error: BaseException, context: str = "") -> Path | None:
    """Write ``error``'s traceback to a new log file; its path, or ``None`` when it cannot be written."""
    folder = gasa_home() / LOG_FOLDER
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"gasa-segment-{stamp}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as stream:
            stream.write(f"{context}\n{text}\n" if context else f"{text}\n")
    except OSError as err:
        logger.info("could not save the traceback in %s: %s", path, err)
        return None
    return path


def crash_line(error: BaseException, context: str = "") -> str:
    """The one line reporting an unexpected ``error`` (traceback saved; logged at INFO, i.e. ``--verbose``)."""
    logger.info("unexpected error%s", f" ({context})" if context else "", exc_info=error)
    first = (str(error).strip().splitlines() or [""])[0]
    name = f"{type(error).__name__}: {first}" if first else type(error).__name__
    saved = save_traceback(error, context)
    where = f"details in {saved}" if saved else "run with --verbose for details"
    return f"internal error: {name} ({where})"
