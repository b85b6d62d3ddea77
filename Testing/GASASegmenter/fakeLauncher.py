"""A launcher that starts its command as a *child*, as Slicer's ``PythonSlicer`` starts ``python-real``.

Usage: ``python fakeLauncher.py spawn|setsid PROGRAM ARGS...``. Like the CTK AppLauncher on Linux and macOS
it does not exec: it starts PROGRAM with the launcher's own stdout and stderr (QProcess's forwarded
channels), waits for it and exits with its exit code; SIGTERM ends the launcher alone (it forwards nothing).
``setsid`` starts the child as the leader of a session of its own, as ``python-real`` may be.
"""

from __future__ import annotations

import subprocess
import sys


def main(argv: list[str]) -> int:
    mode, command = argv[0], argv[1:]
    if mode not in ("spawn", "setsid") or not command:
        sys.stderr.write("usage: fakeLauncher.py spawn|setsid PROGRAM ARGS...\n")
        return 2
    child = subprocess.Popen(command, start_new_session=mode == "setsid")
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
