"""Keep what native libraries print on file descriptor 2 out of the user's terminal, and log it instead.

C libraries inside SimpleITK write their own complaints straight to descriptor 2, past Python's
``sys.stderr``: a NIfTI write onto a full disk prints ``** ERROR: NWAD: wrote only 65536 of 163840 bytes``
before GASACore can raise its own one-line error. :func:`native_stderr_to_log` sends descriptor 2 to a
temporary file for the duration of one library call and passes what arrived to ``logging`` (one record per
line, at the level the caller chooses), so the user reads GASACore's message once and the library's detail
stays in the log.

Only the calling thread should print while the redirect is in place: descriptor 2 is shared by the whole
process, so a line another thread writes in that time reaches the log instead of the terminal.

Example::

    with native_stderr_to_log(logger, "SimpleITK"):
        writer.Execute(image)      # "** ERROR: NWAD ..." -> logger.debug("SimpleITK: ** ERROR: NWAD ...")
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["native_stderr_to_log"]

_STDERR = 2
#: At most this much of what a library printed is kept for the log (bytes).
_KEEP_BYTES = 16 * 1024


def _flush_python_stderr() -> None:
    with contextlib.suppress(Exception):  # a closed or replaced sys.stderr must not stop the library call
        sys.stderr.flush()


@contextlib.contextmanager
def native_stderr_to_log(logger: logging.Logger, source: str, *, level: int = logging.DEBUG) -> Iterator[None]:
    """Redirect descriptor 2 into a temporary file for the ``with`` body, then log each line it received.

    Args:
        logger: where the lines go, as ``"<source>: <line>"``.
        source: the library's name, put before each line.
        level: the logging level of those lines.

    The body's exceptions propagate unchanged, after descriptor 2 is restored and the lines are logged.
    Where descriptor 2 cannot be duplicated (no descriptor 2, e.g. a GUI process on Windows) the body runs
    without a redirect.
    """
    try:
        saved = os.dup(_STDERR)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as capture:
        _flush_python_stderr()
        os.dup2(capture.fileno(), _STDERR)
        try:
            yield
        finally:
            _flush_python_stderr()
            os.dup2(saved, _STDERR)
            os.close(saved)
            capture.seek(0)
            printed = capture.read(_KEEP_BYTES).decode("utf-8", errors="replace")
            for line in printed.splitlines():
                if line.strip():
                    logger.log(level, "%s: %s", source, line.rstrip())
