"""The CPU backend through the engine: ``--cpu-backend`` reaches the sliding window, the run's JSON ``done`` event
says which backend ran and why, the backends agree, a failing backend falls back and says so, the thread rule
applies only to an automatic thread count, and the CLI sets OpenMP's passive wait policy before torch loads
OpenMP (read back from libgomp itself through ``OMP_DISPLAY_ENV``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from GASACore import SegmentOptions, segment
from GASACore.cli import main
from GASACore.events import DoneEvent, parse_event_line
from GASACore.inference.cpu_capability import auto_cpu_backend, detect_cpu_capability
from GASACore.inference.cpu_session import CpuSession
from GASACore.openmp_env import USER_WAIT_SETTINGS

DEMO = Path(__file__).resolve().parents[3] / "Resources" / "models" / "gasa-demo-btcv"


class ConvolutionSpy:
    """Counts the calls of the real ``torch.mkldnn_convolution`` (the oneDNN backend's entry point)."""

    def __init__(self) -> None:
        self.real, self.calls = torch.mkldnn_convolution, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


def _segment_json(ct: Path, model: Path, out: Path, capsys, *extra: str) -> DoneEvent:
    argv = [str(ct), "-o", str(out), "-m", str(model), "--no-tta", "--device", "cpu", "--progress", "json", *extra]
    assert main(argv) == 0
    events = [parse_event_line(line) for line in capsys.readouterr().out.splitlines()]
    done = [e for e in events if isinstance(e, DoneEvent)]
    assert len(done) == 1
    return done[0]


#: What ``auto`` and ``onednn-bf16`` run on this machine (bfloat16 only where the CPU has AMX / oneDNN bf16 kernels).
_AUTO, AUTO_REASON = auto_cpu_backend(detect_cpu_capability())
AUTO = _AUTO.value
BF16_HERE = "onednn-bf16" if detect_cpu_capability().onednn_bf16 else "onednn"


@pytest.mark.parametrize(
    ("flag", "backend", "reason", "routed"),
    [
        ([], AUTO, AUTO_REASON, True),
        (["--cpu-backend", "onednn"], "onednn", None, True),
        (["--cpu-backend", "onednn-bf16"], BF16_HERE, None if BF16_HERE == "onednn-bf16" else "onednn-bf16", True),
        (["--cpu-backend", "eager"], "eager", None, False),
    ],
    ids=["auto", "onednn", "onednn-bf16", "eager"],
)
def test_the_chosen_backend_runs_and_the_report_says_so(
    small_ct: Path, nnunet_model: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch,
    flag: list[str], backend: str, reason: str | None, routed: bool,
) -> None:  # fmt: skip
    spy = ConvolutionSpy()
    monkeypatch.setattr(torch, "mkldnn_convolution", spy)
    done = _segment_json(small_ct, nnunet_model, tmp_path / "seg.nii.gz", capsys, *flag)
    assert (done.device, done.backend) == ("cpu", backend)
    assert (done.backend_reason or "").startswith(reason or "") and (reason is not None or done.backend_reason is None)
    assert (spy.calls > 0) is routed


def test_backends_give_the_same_labels(small_ct: Path, nnunet_model: Path, tmp_path: Path, capsys) -> None:
    labels = {}
    for backend in ("eager", "onednn"):
        out = tmp_path / f"{backend}.nii.gz"
        _segment_json(small_ct, nnunet_model, out, capsys, "--cpu-backend", backend)
        labels[backend] = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert labels["eager"].max() > 0
    assert float(np.mean(labels["eager"] == labels["onednn"])) >= 0.999


@pytest.mark.parametrize("case", ["sample", pytest.param("dicom", marks=pytest.mark.slow)])
def test_bf16_agrees_with_float32_on_whole_real_cts_with_the_demo_model(shared_data: Path, case: str) -> None:
    """The accuracy gate of ``onednn-bf16`` (what ``auto`` picks on AMX CPUs): whole-volume argmax agreement with
    float32 ``onednn`` >= 99.9% for the trained demo model (measured 99.995% on the sample CT, 99.983% on the
    DICOM CT of another patient)."""
    folder = shared_data / "totalsegmentator"
    ct = folder / ("example_ct.nii.gz" if case == "sample" else "example_ct_dicom")
    labels = {
        backend: segment(ct, DEMO, options=SegmentOptions(device="cpu", cpu_backend=backend)).labels
        for backend in ("onednn", "onednn-bf16")
    }
    assert len(np.unique(labels["onednn"])) >= 3, "the demo model must find organs in the CT"
    assert float(np.mean(labels["onednn"] == labels["onednn-bf16"])) >= 0.999


def test_a_failing_backend_falls_back_and_the_report_says_why(
    small_ct: Path, nnunet_model: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("oneDNN primitive creation failed (simulated)")

    monkeypatch.setattr(torch, "mkldnn_convolution", broken)
    done = _segment_json(small_ct, nnunet_model, tmp_path / "seg.nii.gz", capsys)
    assert done.backend == "eager"  # onednn-bf16 (where auto picks it) tries float32 onednn first: fails too
    assert f"{AUTO} failed" in (done.backend_reason or "") and "simulated" in (done.backend_reason or "")


def test_the_done_event_keeps_the_backend_through_json() -> None:
    event = DoneEvent("/o.nii.gz", "case", "cpu", 1.5, "onednn", "auto: why")
    assert parse_event_line(event.to_json_line()) == event
    assert "backend" not in json.loads(DoneEvent("/o.nii.gz", device="cuda:0").to_json_line())


def test_the_thread_rule_applies_only_to_an_automatic_count(monkeypatch: pytest.MonkeyPatch) -> None:
    window = (1, 1, 48, 40, 48)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's choice: torch's setting stays
    assert CpuSession("auto", window_shape=window, num_threads=None).governor is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    assert CpuSession("auto", window_shape=window, num_threads=2).governor is None
    session = CpuSession("auto", window_shape=window, num_threads=None)
    assert session.governor is not None and session.governor.window_voxels == 48 * 40 * 48
    before = torch.get_num_threads()
    try:
        session.before_batch()
        assert 1 <= session.record.threads == torch.get_num_threads() <= session.governor.cpus
    finally:
        torch.set_num_threads(before)


def _openmp_policy(env_extra: dict[str, str]) -> str:
    """The wait policy libgomp reports when ``python -m GASACore.cli --check-device`` loads torch."""
    env = {k: v for k, v in os.environ.items() if k not in USER_WAIT_SETTINGS} | env_extra
    env["OMP_DISPLAY_ENV"] = "TRUE"
    result = subprocess.run(
        [sys.executable, "-m", "GASACore.cli", "--check-device", "--device", "cpu"],
        capture_output=True, text=True, env=env, check=True, timeout=300,
    )  # fmt: skip
    assert json.loads(result.stdout)["device"] == "cpu"
    lines = [line for line in result.stderr.splitlines() if "OMP_WAIT_POLICY" in line]
    assert lines, f"libgomp printed no environment: {result.stderr[-2000:]!r}"
    return lines[0].split("=", 1)[1].strip().strip("'")


def test_the_cli_sets_a_passive_wait_policy_before_torch_loads_openmp() -> None:
    assert _openmp_policy({}) == "PASSIVE"
    assert _openmp_policy({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"  # the user's choice stays
