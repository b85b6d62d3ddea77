"""First-use installation: what is asked, what runs, and a failed install (no package index) that says why.

The install runs the real pip, in the background, against a package index that cannot be reached (as on
an offline machine), into a private folder: it must fail within seconds, with one message that names the
package, pip's reason and what to do, and no poll may block.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import pythonQt
from GASASegmenterLib.dependencies import (
    OFFLINE_ADVICE,
    InstallJob,
    InstallState,
    InstallStep,
    installQuestion,
    installSteps,
    missingPackages,
)
from GASASegmenterLib.qtProcessRunner import QProcessRunner


def test_nothing_is_missing_here_and_the_question_says_what_it_installs() -> None:
    assert missingPackages() == []
    question = installQuestion(["torch", "safetensors"])
    assert "torch, safetensors" in question and "1-3 GB" in question and "Slicer stays usable" in question


def test_steps_install_torch_with_light_the_torch_and_never_slicers_packages() -> None:
    steps = installSteps(["torch", "dynamic_network_architectures"], "/slicer/bin/PythonSlicer")
    commands = [step.command for step in steps]
    assert [step.what for step in steps][-2:] == ["torch", "dynamic-network-architectures>=0.4.4,<0.5"]
    assert commands[-2][:4] == ("/slicer/bin/PythonSlicer", "-m", "light_the_torch", "install")
    assert commands[-1][-2:] == ("--no-deps", "dynamic-network-architectures>=0.4.4,<0.5")
    assert all("--timeout" in command and "--retries" in command for command in commands)
    with pytest.raises(RuntimeError, match="Slicer's own Python packages numpy are missing"):
        installSteps(["numpy", "tqdm"], "/slicer/bin/PythonSlicer")


def test_an_offline_install_fails_fast_and_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_TARGET", str(tmp_path / "target"))  # never this environment
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    lines: list[str] = []
    steps = installSteps(["torch", "safetensors"], sys.executable)
    job = InstallJob(steps, lambda: QProcessRunner(qtModule=pythonQt), lines.append)
    started, longest = time.monotonic(), 0.0
    while not job.finished:
        assert time.monotonic() - started < 120, "pip kept retrying"
        before = time.monotonic()
        job.poll()
        longest = max(longest, time.monotonic() - before)
        time.sleep(0.02)
    assert job.state == InstallState.FAILED and longest < 0.25
    assert job.message.startswith(f"Installing {steps[0].what} failed (exit code 1): ERROR: ")
    assert job.message.endswith(OFFLINE_ADVICE)
    assert lines[0] == f"installing {steps[0].what} (1 of {len(steps)})..."
    assert not any(line.startswith("installing torch") for line in lines), "a later step ran after a failure"
    assert not (tmp_path / "target").exists() or not any((tmp_path / "target").iterdir())


def test_an_install_can_be_cancelled_without_waiting() -> None:
    step = InstallStep("something slow", (sys.executable, "-c", "import time; time.sleep(30)"))
    job = InstallJob([step], lambda: QProcessRunner(qtModule=pythonQt))
    time.sleep(0.2)
    started = time.monotonic()
    job.cancel()
    while not job.poll():
        time.sleep(0.02)
    assert job.state == InstallState.CANCELLED and time.monotonic() - started < 2.0
