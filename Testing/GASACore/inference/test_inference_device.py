"""Device selection with reasons (real on this CPU machine, simulated CUDA), CPU threads, GPU memory rule."""

from __future__ import annotations

import types

import pytest
import torch

from GASACore.errors import GASAError
from GASACore.inference import (
    accumulation_bytes,
    accumulation_fits,
    arch_supported,
    available_cpus,
    check_device,
    cpu_threads,
    cuda_environment,
    cuda_unusable_reason,
    resolve_num_threads,
    select_device,
)
from GASACore.inference import device as device_module

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a usable GPU")


def test_auto_on_this_cpu_machine() -> None:
    device, reason = select_device("auto")
    assert device == torch.device("cpu")
    assert "CUDA not usable" in reason and "using the CPU" in reason
    assert cuda_unusable_reason() is not None and cuda_unusable_reason() in reason


def test_cuda_refused_with_the_reason() -> None:
    expected = "torch was built without CUDA" if not torch.backends.cuda.is_built() else "no CUDA device visible"
    with pytest.raises(GASAError, match=f"'cuda' was requested but CUDA is not usable: {expected}"):
        select_device("cuda")
    with pytest.raises(GASAError, match="CUDA is not usable"):
        select_device("cuda:1")


def test_cpu_and_bad_requests() -> None:
    assert select_device("CPU") == (torch.device("cpu"), "the CPU was requested")
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        select_device("gpu")


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A CUDA build that sees one Blackwell GPU (capability 12.0) and has kernels up to sm_90."""
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (12, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA RTX PRO 6000")
    memory = types.SimpleNamespace(total_memory=96 * 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=None: memory)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_50", "sm_80", "sm_86", "sm_90"])
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    return monkeypatch


def test_unsupported_gpu_reason(fake_cuda: pytest.MonkeyPatch) -> None:
    reason = cuda_unusable_reason(0)
    assert reason is not None
    assert "CUDA device 0 (NVIDIA RTX PRO 6000, capability 12.0) is not supported by this torch build" in reason
    assert "CUDA 12.4" in reason and "supported archs sm_50 sm_80 sm_86 sm_90" in reason
    device, why = select_device("auto")
    assert device.type == "cpu" and reason in why
    with pytest.raises(GASAError, match=r"capability 12\.0"):
        select_device("cuda")
    assert "only 1 device" in str(cuda_unusable_reason(3))


def test_usable_gpu(fake_cuda: pytest.MonkeyPatch) -> None:
    fake_cuda.setattr(torch.cuda, "get_arch_list", lambda: ["sm_80", "sm_90", "sm_120"])
    fake_cuda.setattr(device_module, "_probe", lambda index: None)
    assert cuda_unusable_reason(0) is None
    assert select_device("auto") == (
        torch.device("cuda", 0),
        "CUDA device 0 (NVIDIA RTX PRO 6000, capability 12.0) is usable",
    )
    assert select_device("cuda")[0] == torch.device("cuda", 0)
    fake_cuda.setattr(device_module, "_probe", lambda index: "CUDA device 0 (...) failed a test computation: boom")
    assert select_device("auto")[1].endswith("failed a test computation: boom); using the CPU")
    report = check_device("cuda")
    assert report["device"] == "cuda:0" and report["cuda_usable"] is False and "boom" in report["reason"]
    assert report["gpus"][0] == {
        "index": 0, "name": "NVIDIA RTX PRO 6000", "capability": "12.0", "memory_gib": 96.0, "supported": True
    }  # fmt: skip


def test_this_machine_environment_and_report() -> None:
    env = cuda_environment()
    assert env.torch_version == torch.__version__ and env.cuda_version == torch.version.cuda
    assert env.gpus == () and env.cuda_built == torch.backends.cuda.is_built()
    report = check_device("auto")
    assert report["device"] == "cpu" and report["cuda_usable"] is False
    assert report["unusable_reason"] == cuda_unusable_reason() and report["unusable_reason"] in report["reason"]


def test_no_visible_device_mentions_cuda_visible_devices(fake_cuda: pytest.MonkeyPatch) -> None:
    fake_cuda.setattr(torch.cuda, "device_count", lambda: 0)
    fake_cuda.setenv("CUDA_VISIBLE_DEVICES", "")
    assert cuda_unusable_reason() == (
        "no CUDA device visible (CUDA_VISIBLE_DEVICES=''): is an NVIDIA GPU present and its driver installed?"
    )


@pytest.mark.parametrize(
    ("capability", "archs", "supported"),
    [
        ((8, 6), ["sm_80"], True),  # same major, higher minor: the sm_80 cubin runs
        ((8, 0), ["sm_86"], False),
        ((9, 0), ["sm_80", "sm_86"], False),  # a newer major needs PTX
        ((9, 0), ["sm_80", "compute_80"], True),  # PTX is compiled just in time
        ((7, 5), ["compute_80"], False),
        ((9, 0), ["sm_90a"], True),
        ((9, 1), ["sm_90a"], False),  # arch-specific cubins run on exactly that capability
        ((12, 0), ["sm_100", "sm_120"], True),
        ((10, 0), ["sm_120"], False),
        ((8, 6), ["garbage", ""], False),
    ],
)
def test_arch_supported(capability: tuple[int, int], archs: list[str], supported: bool) -> None:
    assert arch_supported(capability, archs) is supported


def test_resolve_num_threads() -> None:
    assert resolve_num_threads(3, {}) == 3
    assert resolve_num_threads(None, {}) == available_cpus() >= 1
    assert resolve_num_threads(None, {"OMP_NUM_THREADS": "4"}) is None
    assert resolve_num_threads(None, {"MKL_NUM_THREADS": "1"}) is None
    with pytest.raises(ValueError, match="num_threads"):
        resolve_num_threads(0, {})


def test_cpu_threads_sets_and_restores() -> None:
    before = torch.get_num_threads()
    with cpu_threads(before + 1) as inside:
        assert inside == torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_accumulation_memory_rule() -> None:
    assert accumulation_bytes(1, 14, (100, 200, 300)) == 4 * 16 * 6_000_000
    assert accumulation_fits(4 * 2**30, 8 * 2**30) and not accumulation_fits(4 * 2**30 + 1, 8 * 2**30)
