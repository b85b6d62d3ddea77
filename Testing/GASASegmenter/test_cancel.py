"""Cancel means stopped: the real engine behind a launcher that spawns it, as PythonSlicer spawns python-real.

The module starts ``LAUNCHER -> gasa-segment`` through the QProcess runner (whose child shares this
process's group, as QProcess's does) or the subprocess runner (a session of its own). Cancel mid-prediction
must leave no process of the run within 2 s, no temporary file, and the scene as it was; the UI-side calls
(``cancel`` and every ``poll``) must return at once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import pythonQt
from GASASegmenterLib.job import JobState, SegmentationJob
from GASASegmenterLib.logic import SegmenterLogic, SegmentOptions
from GASASegmenterLib.processRunner import SubprocessRunner
from GASASegmenterLib.processTree import descendants, isProcessAlive, processTable
from GASASegmenterLib.qtProcessRunner import QProcessRunner
from sceneHelpers import sceneSnapshot

LAUNCHER = Path(__file__).with_name("fakeLauncher.py")
FAST = SegmentOptions(device="cpu", tta=False)
#: The longest a poll from the UI's timer may take (it never waits on a process).
POLL_BUDGET_S = 0.25


def _processesNaming(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (the run's temporary folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().decode("utf-8", "replace") and isProcessAlive(
                    int(entry.name)
                ):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _pollUntil(job: SegmentationJob, condition, timeout: float) -> float:
    """Poll as the UI's timer does until ``condition()``; returns the longest single poll (s)."""
    longest, deadline = 0.0, time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting; job state {job.state}, stage {job.stage}: {job.message}"
        started = time.monotonic()
        job.poll()
        longest = max(longest, time.monotonic() - started)
        time.sleep(0.02)
    return longest


def _start(scene, volume, bundle: Path, tmp_path: Path, runner, launcherMode: str, monkeypatch) -> SegmentationJob:
    engineTemp = tmp_path / "engine-tmp"
    engineTemp.mkdir()
    monkeypatch.setenv("TMPDIR", str(engineTemp))  # the engine's temporary files; the module's are in its tempDir
    launcher = [sys.executable, str(LAUNCHER), launcherMode]
    logic = SegmenterLogic(scene, engine=[*launcher, sys.executable, "-m", "GASACore.cli"])
    return logic.startSegmentation(volume, bundle, FAST, runner=runner)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the process table is read from /proc (Linux)")
@pytest.mark.parametrize(
    ("runnerKind", "launcherMode"), [("qprocess", "spawn"), ("qprocess", "setsid"), ("subprocess", "spawn")]
)
def test_cancel_behind_a_launcher_leaves_nothing(
    scene, ct_volume, slow_bundle: Path, tmp_path: Path, monkeypatch, runnerKind: str, launcherMode: str
) -> None:
    runner = QProcessRunner(qtModule=pythonQt) if runnerKind == "qprocess" else SubprocessRunner()
    before = sceneSnapshot(scene)
    job = _start(scene, ct_volume, slow_bundle, tmp_path, runner, launcherMode, monkeypatch)
    tempDir, launcherPid = job.tempDir, job.runner.pid
    _pollUntil(job, lambda: job.stage == "predict", timeout=180)
    engine = job.process.enginePid
    assert engine is not None and job.process.engineGroup == engine, "the engine leads a group of its own"
    table = processTable()
    assert engine in descendants([launcherPid], table), "the engine runs as the launcher's child"
    if runnerKind == "qprocess":
        assert table[launcherPid][1] == os.getpgrp(), "QProcess leaves the launcher in the application's group"
    run = {launcherPid, engine} | descendants([launcherPid], table)
    assert set(_processesNaming(str(tempDir))) <= run and engine in _processesNaming(str(tempDir))

    started = time.monotonic()
    job.cancel()
    assert time.monotonic() - started < POLL_BUDGET_S and job.state == JobState.CANCELLING
    longestPoll = _pollUntil(job, lambda: job.finished, timeout=10)
    elapsed = time.monotonic() - started
    assert job.state == JobState.CANCELLED and "cancelled" in job.message
    assert elapsed < 2.0, f"the run took {elapsed:.2f} s to stop"
    assert longestPoll < POLL_BUDGET_S, f"a poll took {longestPoll:.2f} s"
    assert not [pid for pid in run if isProcessAlive(pid)] and _processesNaming(str(tempDir)) == []
    assert not tempDir.exists() and list((tmp_path / "engine-tmp").iterdir()) == []
    assert sceneSnapshot(scene) == before and job.segmentationNode is None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the process table is read from /proc (Linux)")
def test_cancel_before_the_engine_said_who_it_is(scene, ct_volume, tiny_bundle: Path, tmp_path: Path, monkeypatch):
    """Cancel at once: the engine has not started (or not yet named its group); nothing may survive."""
    job = _start(scene, ct_volume, tiny_bundle, tmp_path, QProcessRunner(qtModule=pythonQt), "setsid", monkeypatch)
    tempDir = job.tempDir
    time.sleep(0.3)  # the launcher has started its child, which is still importing
    started = time.monotonic()
    job.cancel()
    _pollUntil(job, lambda: job.finished, timeout=10)
    assert time.monotonic() - started < 2.0 and job.state == JobState.CANCELLED
    time.sleep(0.5)  # a child that escaped would still be running now
    assert _processesNaming(str(tempDir)) == [] and not tempDir.exists()
