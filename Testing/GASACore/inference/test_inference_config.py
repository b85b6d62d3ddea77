"""SlidingWindowConfig validation (its step and batch rules are GASACore.options') and the progress / cancel helpers."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch

from GASACore.errors import Cancelled
from GASACore.events import Stage
from GASACore.inference import Autocast, ProgressCounter, SlidingWindowConfig, cancel_checker
from GASACore.options import OptionError


def test_defaults_and_normalisation() -> None:
    cuda1 = torch.device("cuda", 1)
    cfg = SlidingWindowConfig(patch_size=[np.int64(48), 192, 192], mirror_axes=[2, 0], device=cuda1, autocast="bf16")  # type: ignore[arg-type]
    assert cfg.patch_size == (48, 192, 192) and cfg.mirror_axes == (2, 0)
    assert (
        cfg.device == torch.device("cuda", 1) and cfg.autocast is Autocast.BF16 and cfg.autocast.dtype == torch.bfloat16
    )
    default = SlidingWindowConfig(patch_size=(8, 8, 8))
    assert (default.step_size, default.mirror_axes, default.use_gaussian, default.batch_size) == (
        0.5,
        (0, 1, 2),
        True,
        1,
    )
    assert default.device is None and default.accumulate_on_device is None
    assert default.autocast.dtype == torch.float16 and Autocast.FP32.dtype is None
    assert SlidingWindowConfig(patch_size=(8, 8, 8), step_size=np.float32(0.25)).step_size == 0.25
    with pytest.raises(dataclasses.FrozenInstanceError):
        default.step_size = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("patch_size", (8, 8), "patch_size must be 3 positive integers"),
        ("patch_size", (8, 0, 8), "patch_size"),
        ("patch_size", (8.5, 8, 8), "patch_size"),
        ("step_size", 0.0, r"step_size must be a number in \(0, 1\], got 0.0"),
        ("step_size", 1.5, "step_size"),
        ("step_size", float("nan"), "step_size"),
        ("mirror_axes", (0, 3), "mirror_axes must be a tuple of distinct spatial axes"),
        ("mirror_axes", (1, 1), "mirror_axes"),
        ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
        ("device", "cpu", "device must be a torch.device resolved with select_device, or None"),
        ("device", "cuda:1", "got 'cuda:1'"),
        ("autocast", "fp8", r"autocast must be one of \['fp16', 'bf16', 'fp32'\], got 'fp8'"),
        ("skip_threshold", float("nan"), "skip_threshold must be a finite number"),
        ("num_threads", 0, "num_threads"),
        ("accumulate_on_device", "yes", "accumulate_on_device"),
    ],
)
def test_refuses(field: str, value: object, message: str) -> None:
    values: dict[str, object] = {"patch_size": (8, 8, 8), field: value}
    with pytest.raises(ValueError, match=message):
        SlidingWindowConfig(**values)  # type: ignore[arg-type]


def test_step_and_batch_rules_are_the_options_rules() -> None:
    for field, value in (("step_size", 0), ("batch_size", True)):
        with pytest.raises(OptionError) as caught:
            SlidingWindowConfig(patch_size=(8, 8, 8), **{field: value})  # type: ignore[arg-type]
        assert caught.value.field == field and caught.value.got is value


def test_progress_counter_is_monotone_across_restarts() -> None:
    seen: list[tuple[str, float]] = []
    reporter = ProgressCounter(lambda stage, f: seen.append((stage, f)), total=4)
    reporter.start()
    reporter.advance(1)
    reporter.advance(1)
    reporter.restart()  # e.g. an out-of-memory retry starts over
    reporter.advance(1)
    reporter.advance(2)
    reporter.advance(1)
    reporter.finish()
    assert seen == [("predict", 0.0), ("predict", 0.25), ("predict", 0.5), ("predict", 0.75), ("predict", 1.0)]
    assert all(stage is Stage.PREDICT for stage, _ in seen)
    ProgressCounter(None, total=3).advance(1)  # no sink: nothing happens


def test_cancel_checker_kinds() -> None:
    cancel_checker(None)()
    event = threading.Event()
    check = cancel_checker(event)
    check()
    event.set()
    with pytest.raises(Cancelled, match="cancelled"):
        check()
    flag = [False]
    check = cancel_checker(lambda: flag[0])
    check()
    flag[0] = True
    with pytest.raises(Cancelled):
        check()
    with pytest.raises(ValueError, match=r"threading\.Event, a callable"):
        cancel_checker("stop")  # type: ignore[arg-type]
