"""Start a command as the leader of a new session, then become it (POSIX ``exec``).

``QProcess`` cannot put its child in a new process group by itself, so on Linux and macOS the Qt runner
starts ``python sessionLauncher.py PROGRAM ARGS...``: this script calls ``os.setsid()`` and replaces
itself with ``PROGRAM`` (same process id), which can then be cancelled with ``os.killpg``.
"""

from __future__ import annotations

import contextlib
import os
import sys


def main(argv: list[str]) -> None:
    """Run ``argv[0]`` with the arguments ``argv[1:]`` in a new session."""
    if not argv:
        sys.stderr.write("sessionLauncher: expected a program and its arguments\n")
        raise SystemExit(2)
    # Already a group leader, or not POSIX: the caller then kills the tree by process id.
    with contextlib.suppress(AttributeError, OSError):
        os.setsid()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
