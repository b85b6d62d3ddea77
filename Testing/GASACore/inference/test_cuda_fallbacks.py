"""The GPU path's degradation rules, checked where they need no GPU: CUDA out-of-memory -> leaner retry -> CPU.

The steps here raise ``torch.cuda.OutOfMemoryError`` themselves (as torch does on a full GPU); the runs on a
real GPU are in test_gpu_path.py (``-m gpu``).
"""

from __future__ import annotations

import pytest
import torch
from inference_helpers import PATCH, config

from GASACore.errors import GASAError
from GASACore.inference import retry_on_cuda_oom, window_slicers, with_cpu_fallback
from GASACore.inference.transfer import WindowFeed
from GASACore.inference.windows import pad_to_patch

CUDA = torch.device("cuda", 0)


def _out_of_memory() -> torch.cuda.OutOfMemoryError:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_with_cpu_fallback_redoes_the_step_on_the_cpu(caplog: pytest.LogCaptureFixture) -> None:
    tried: list[str] = []

    def step(device: torch.device) -> str:
        tried.append(str(device))
        if device.type == "cuda":
            raise _out_of_memory()
        return "done on the CPU"

    assert with_cpu_fallback(step, CUDA, "the restore step") == "done on the CPU"
    assert tried == ["cuda:0", "cpu"]
    assert "CUDA out of memory in the restore step on cuda:0 (CUDA out of memory. Tried to allocate" in caplog.text


def test_with_cpu_fallback_leaves_other_errors_and_other_devices_alone() -> None:
    def broken(device: torch.device) -> None:
        raise RuntimeError("a real bug")

    with pytest.raises(RuntimeError, match="a real bug"):
        with_cpu_fallback(broken, CUDA, "a step")
    assert with_cpu_fallback(lambda device: device.type, "cpu", "a step") == "cpu"


def test_forward_out_of_memory_degrades_step_by_step_then_runs_on_the_cpu(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[tuple[bool, int]] = []

    def attempt(on_device: bool, batch: int) -> str:
        attempts.append((on_device, batch))
        raise _out_of_memory()

    result = retry_on_cuda_oom(attempt, device=CUDA, on_device=True, batch_size=4, last_resort=lambda: "cpu run")
    assert result == "cpu run"
    assert attempts == [(True, 4), (False, 4), (False, 2), (False, 1)]
    assert "with 1 window per batch" in caplog.text and "predicting on the CPU" in caplog.text


def test_without_a_last_resort_the_leanest_out_of_memory_is_an_error() -> None:
    def attempt(on_device: bool, batch: int) -> None:
        raise _out_of_memory()

    with pytest.raises(GASAError, match="CUDA ran out of memory on cuda:0 with 1 window per batch"):
        retry_on_cuda_oom(attempt, device=CUDA, on_device=False, batch_size=1)


def test_window_feed_off_cuda_is_a_plain_stack() -> None:
    image, _ = pad_to_patch(torch.randn(1, 20, 31, 17, generator=torch.Generator().manual_seed(0)), PATCH)
    slicers = window_slicers(image.shape[1:], config().patch_size, 0.5)[:3]
    windows = WindowFeed()(image, slicers, torch.device("cpu"))
    assert torch.equal(windows, torch.stack([image[s] for s in slicers]))


def test_the_cpu_last_resort_reports_the_cpu() -> None:
    """Through the real retry helper and last resort: after CUDA out of memory the record says ``cpu``."""
    from inference_helpers import Affine

    from GASACore.inference.callbacks import ProgressCounter
    from GASACore.inference.cpu_runtime import ForwardRecord
    from GASACore.inference.sliding_window import _on_cpu, _Run

    network = Affine()
    image, _ = pad_to_patch(torch.randn(1, 10, 14, 11), PATCH)
    windows = window_slicers(image.shape[1:], PATCH, 0.5)
    record = ForwardRecord(device=str(CUDA))
    run = _Run(network, image, windows, [None], 3, config(), CUDA, ProgressCounter(None, len(windows)), lambda: None)

    def attempt(on_device: bool, batch: int) -> torch.Tensor:
        raise _out_of_memory()

    def last_resort() -> torch.Tensor:
        return _on_cpu(run, record)

    logits = retry_on_cuda_oom(attempt, device=CUDA, on_device=False, batch_size=1, last_resort=last_resort)
    assert logits.device.type == "cpu" and logits.shape == (3, *image.shape[1:])
    assert torch.allclose(logits, network.expected(image), atol=1e-5)
    assert record.device == "cpu" and "CUDA out of memory on cuda:0" in record.reason
