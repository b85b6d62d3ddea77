"""OutputLocks: the later of two runs writing one output refuses; a dead run's lock is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from small_mounts import tmpfs

from GASACore.errors import OutputError
from GASACore.io.lockfile import BREAKER_STALE_AFTER_S, OutputLocks, break_stale_lock, lock_path


def _write_lock(output: Path, pid: int, host: str | None = None) -> Path:
    lock = lock_path(output)
    lock.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))
    return lock


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_lock_holds_pid_and_host_and_is_released(tmp_path: Path) -> None:
    output = tmp_path / "ct.nii.gz"
    with OutputLocks([output]):
        lock = tmp_path / ".ct.nii.gz.lock"
        owner = json.loads(lock.read_text())
        assert {key: owner[key] for key in ("pid", "host")} == {"pid": os.getpid(), "host": socket.gethostname()}
        assert abs(owner["started"] - time.time()) < 60
    assert list(tmp_path.iterdir()) == []


def test_a_live_run_holding_the_output_is_refused_and_nothing_of_ours_is_left(tmp_path: Path) -> None:
    first, second = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        held = _write_lock(second, live.pid)
        with pytest.raises(OutputError) as caught, OutputLocks([first, second]):
            pass
        assert str(caught.value) == (
            f"output {second} is being written by another run (pid {live.pid} on {socket.gethostname()}); wait "
            f"for it to finish, or remove {held} if no such run exists"
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == [held.name], "the lock of a.nii.gz is released"
        assert json.loads(held.read_text())["pid"] == live.pid, "the live run's lock is untouched"
    finally:
        live.kill()
        live.wait()


def test_another_hosts_lock_is_never_taken_over(tmp_path: Path) -> None:
    output = tmp_path / "ct.nii.gz"
    _write_lock(output, _dead_pid(), host="some-other-node")
    with pytest.raises(OutputError, match=r"being written by another run \(pid \d+ on some-other-node\)"):
        OutputLocks([output]).acquire()


def test_a_dead_runs_lock_is_taken_over(tmp_path: Path) -> None:
    output = tmp_path / "ct.nii.gz"
    lock = _write_lock(output, _dead_pid())
    with OutputLocks([output]):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        assert sorted(p.name for p in tmp_path.iterdir()) == [lock.name], "no aside copy of the stale lock left"
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_lock_is_refused(tmp_path: Path) -> None:
    output = tmp_path / "ct.nii.gz"
    lock_path(output).write_text("")
    with pytest.raises(OutputError, match=r"another run \(its lock file cannot be read\)"):
        OutputLocks([output]).acquire()


def test_a_read_only_folder_cannot_be_locked(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", read_only=True) as folder:
        output = folder / "ct.nii.gz"
        with pytest.raises(OutputError) as caught:
            OutputLocks([output]).acquire()
        assert str(caught.value) == f"cannot lock output {output}: read-only file system ({lock_path(output)})"


# Two runs that find the same stale lock: exactly one takes it over (the breaker guard), the other refuses.
_CONTENDER = """
import sys, time
from pathlib import Path
from GASACore.errors import OutputError
from GASACore.io.lockfile import OutputLocks
output, start = Path(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    pass
try:
    with OutputLocks([output]):
        print("won", flush=True)
        time.sleep(1.0)
except OutputError as err:
    print("refused", err, flush=True)
"""


@pytest.mark.parametrize("contenders", [6])
def test_runs_racing_for_one_stale_lock_give_exactly_one_owner(tmp_path: Path, contenders: int) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for round_number in range(3):
        output = tmp_path / f"ct{round_number}.nii.gz"
        _write_lock(output, _dead_pid())
        start = time.time() + 1.5  # every contender is imported and spinning before the start
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", _CONTENDER, str(output), str(start)], stdout=subprocess.PIPE, text=True, env=env
            )
            for _ in range(contenders)
        ]
        results = [run.communicate(timeout=60)[0].split()[0] for run in runs]
        assert sorted(results) == ["refused"] * (contenders - 1) + ["won"], results
        assert sorted(p.name for p in tmp_path.iterdir()) == [], "no lock, breaker or stale copy left"


def test_a_breaker_left_by_a_dead_breaker_is_cleared_after_its_age_limit(tmp_path: Path) -> None:
    output = tmp_path / "ct.nii.gz"
    lock = _write_lock(output, _dead_pid())
    breaker = tmp_path / f"{lock.name}.break"
    breaker.write_text("{}")
    assert not break_stale_lock(lock, lambda _path: True), "a fresh breaker means someone is breaking: wait"
    assert lock.exists()
    old = time.time() - BREAKER_STALE_AFTER_S - 1
    os.utime(breaker, (old, old))
    assert not break_stale_lock(lock, lambda _path: True) and not breaker.exists()
    assert break_stale_lock(lock, lambda _path: True) and not lock.exists()
    with OutputLocks([output]):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
