"""The device rule and the ``--check-device`` report as pure functions of what torch reports."""

from __future__ import annotations

import json

import pytest

from GASACore.inference import CudaEnvironment, GpuInfo, decide_device, device_report, unusable_reason
from GASACore.options import Device

CUDA_BUILD = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86")  # e.g. a cu118 wheel without sm_89/sm_90


def _env(capability: tuple[int, int], arch_list: tuple[str, ...], name: str = "GPU", count: int = 1) -> CudaEnvironment:
    gpus = tuple(GpuInfo(name, capability, 24 * 2**30) for _ in range(count))
    return CudaEnvironment("2.5.1+cu118", "11.8", True, arch_list, gpus, cudnn_version=90100)


def test_ada_gpu_runs_on_an_sm_86_build() -> None:
    """Capability 8.9 (RTX 4090, L4, L40) on a build whose newest cubin is sm_86: same major, usable."""
    env = _env((8, 9), CUDA_BUILD, "NVIDIA L4")
    assert unusable_reason(env) is None
    report = device_report(env, Device.parse("auto"))
    assert report["device"] == "cuda:0" and report["cuda_usable"] is True
    assert report["reason"] == "CUDA device 0 (NVIDIA L4, capability 8.9) is usable"
    gpu = {"index": 0, "name": "NVIDIA L4", "capability": "8.9", "memory_gib": 24.0, "supported": True}
    assert report["gpus"] == [gpu]


def test_ptx_only_build_runs_on_a_newer_gpu() -> None:
    env = _env((9, 0), ("compute_80",), "NVIDIA H100")
    assert decide_device(env, Device.parse("cuda")).cuda_usable
    assert device_report(env, Device.parse("cuda"))["reason"] == (
        "CUDA device 0 (NVIDIA H100, capability 9.0) was requested and is usable"
    )


def test_older_gpu_than_the_build_is_refused_with_its_reason() -> None:
    env = _env((7, 5), ("sm_80", "sm_86", "sm_90", "compute_90"), "Tesla T4")
    reason = unusable_reason(env)
    assert reason == (
        "CUDA device 0 (Tesla T4, capability 7.5) is not supported by this torch build (torch 2.5.1+cu118, "
        "CUDA 11.8): supported archs sm_80 sm_86 sm_90 compute_90"
    )
    report = device_report(env, Device.parse("auto"))
    assert report["device"] == "cpu" and report["cuda_usable"] is False
    assert report["reason"] == f"CUDA not usable ({reason}); using the CPU" and report["unusable_reason"] == reason
    assert report["gpus"][0]["supported"] is False


def test_cpu_build_says_so() -> None:
    env = CudaEnvironment("2.13.0+cpu", None, False)
    report = device_report(env, Device.parse("auto"))
    assert report["device"] == "cpu" and report["cuda_usable"] is False and report["cuda_built"] is False
    assert report["unusable_reason"] == "torch was built without CUDA (torch 2.13.0+cpu)"
    assert report["torch"] == "2.13.0+cpu" and report["cuda"] is None and report["gpus"] == []
    assert json.loads(json.dumps(report)) == report


def test_requests_keep_their_device_and_say_why() -> None:
    env = _env((8, 6), CUDA_BUILD, "RTX 3090")
    cpu = device_report(env, Device.parse("cpu"))
    assert cpu["device"] == "cpu" and cpu["cuda_usable"] is True
    assert cpu["reason"] == "the CPU was requested; CUDA device 0 (RTX 3090, capability 8.6) is usable too"
    second = device_report(env, Device.parse("cuda:1"))
    assert second["device"] == "cuda:1" and second["requested"] == "cuda:1" and second["cuda_usable"] is False
    assert second["reason"] == (
        "device 'cuda:1' was requested but CUDA is not usable: "
        "CUDA device 1 was requested but only 1 device(s) are visible"
    )
    assert device_report(_env((8, 6), CUDA_BUILD, count=2), Device.parse("cuda:1"))["cuda_usable"] is True


@pytest.mark.parametrize("visible", [None, ""])
def test_no_visible_device(visible: str | None) -> None:
    env = CudaEnvironment("2.5.1", "12.4", True, CUDA_BUILD, (), visible_devices=visible)
    hint = "" if visible is None else " (CUDA_VISIBLE_DEVICES='')"
    assert unusable_reason(env) == f"no CUDA device visible{hint}: is an NVIDIA GPU present and its driver installed?"


def test_the_probe_runs_only_on_a_device_that_passed_the_static_checks() -> None:
    probed: list[int] = []

    def probe(index: int) -> str | None:
        probed.append(index)
        return "CUDA device 0 failed a test computation: no kernel image"

    decision = decide_device(_env((8, 9), CUDA_BUILD), Device.parse("auto"), probe)
    assert probed == [0] and decision.device == "cpu" and "no kernel image" in decision.reason
    decide_device(_env((7, 0), ("sm_80",)), Device.parse("auto"), probe)
    assert probed == [0], "an unsupported device is not probed"
