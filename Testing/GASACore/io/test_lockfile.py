"""OutputLocks: the later of two runs writing one output refuses; a dead run's lock is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from small_mounts import tmpfs

from GASACore.errors import OutputError
from GASACore.io.lockfile import OutputLocks, lock_path


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
        assert json.loads(lock.read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
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
