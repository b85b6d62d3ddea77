"""Helpers of the inference tests: linear oracle networks with call counters, a small nnU-Net plan."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from GASACore.inference import SlidingWindowConfig
from GASACore.network import UNetPlan

#: A PlainConvUNet small enough for CPU tests; its windows are 16x32x32 (X, Y, Z).
SMALL_PLAN = UNetPlan(
    patch_size=(16, 32, 32),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(4, 8, 16, 16),
)
PATCH = (8, 12, 10)
SCALES = (1.0, -2.0, 0.5)
SHIFTS = (0.0, 3.0, -1.25)


class Affine(nn.Module):
    """Per-voxel affine map of channel 0 to K logits: ``out[k] = scale[k] * x + shift[k]``; counts its calls.

    Linear and position-independent, so a correct sliding window reproduces it exactly (to float32 rounding),
    mirrored or not. ``hook(call_index, x)`` may replace the output (NaN tests) or act (cancel tests).
    """

    def __init__(
        self,
        scales: Sequence[float] = SCALES,
        shifts: Sequence[float] = SHIFTS,
        patch_size: Sequence[int] = PATCH,
        hook: Callable[[int, torch.Tensor], torch.Tensor | None] | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, len(scales), kernel_size=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(scales).view(-1, 1, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor(shifts))
        self.patch_size = tuple(patch_size)
        self.hook = hook
        self.calls = 0
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != self.patch_size:
            raise ValueError(f"expected windows of {self.patch_size}, got {tuple(x.shape)}")
        self.calls += 1
        self.inputs.append(x.detach().clone())
        out = self.conv(x[:, :1])
        if self.hook is not None:
            replaced = self.hook(self.calls, x)
            if replaced is not None:
                return replaced
        return out

    def expected(self, image: torch.Tensor) -> torch.Tensor:
        """What the network gives on the whole ``(C, X, Y, Z)`` image, ``(K, X, Y, Z)``."""
        with torch.no_grad():
            return self.conv(image[None, :1])[0]


def config(**overrides: object) -> SlidingWindowConfig:
    """The test configuration: PATCH windows, CPU, one thread, float32 sums (the arithmetic the oracles check
    exactly; the float16 sums are tested in test_accumulation.py)."""
    values: dict[str, object] = {
        "patch_size": PATCH, "device": torch.device("cpu"), "num_threads": 1, "logit_sums": "fp32"
    }  # fmt: skip
    values.update(overrides)
    return SlidingWindowConfig(**values)  # type: ignore[arg-type]
