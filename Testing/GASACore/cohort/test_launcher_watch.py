"""torchrun workers die with their launcher: a worker in its own session (as torchrun starts it) gets SIGTERM
when the process that started it is killed with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from GASACore.cohort.launcher_watch import die_with_parent, under_torchrun

ROOT = Path(__file__).resolve().parents[3]

WORKER = """
import os, signal, sys, time
from GASACore.cohort.launcher_watch import die_with_parent
def stop(signum, frame):
    with open(sys.argv[1] + ".part", "w") as f:
        f.write(f"signal {signum}")
    os.replace(sys.argv[1] + ".part", sys.argv[1])  # whole, so the test never reads it half written
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print(die_with_parent(), flush=True)
time.sleep(60)
"""

LAUNCHER = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], start_new_session=True,
                          stdout=subprocess.PIPE, text=True)
print(worker.pid, worker.stdout.readline().strip(), flush=True)
time.sleep(60)
"""


def test_torchrun_worker_is_recognised() -> None:
    assert under_torchrun({"TORCHELASTIC_RUN_ID": "none", "LOCAL_RANK": "0"})
    assert not under_torchrun({"LOCAL_RANK": "0"})


def test_worker_gets_sigterm_when_its_launcher_is_killed(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, WORKER, str(marker)], stdout=subprocess.PIPE, text=True, env=env
    )
    pid, armed = launcher.stdout.readline().split()
    try:
        assert armed == "True"
        launcher.kill()  # SIGKILL: the launcher cannot pass anything on
        launcher.wait(10)
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text() == f"signal {signal.SIGTERM}"
    finally:
        launcher.kill()
        launcher.wait(10)
        with contextlib.suppress(ProcessLookupError):  # the worker, should it have survived
            os.kill(int(pid), signal.SIGKILL)


def test_arming_in_this_process_is_harmless() -> None:
    assert die_with_parent(0) is True  # signal 0 clears the death signal again
