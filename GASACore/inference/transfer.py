"""Host-to-device transfer of sliding windows: page-locked staging and non-blocking copies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from GASACore.inference.windows import Slicer

__all__ = ["WindowFeed"]


class WindowFeed:
    """Moves a batch of windows cut from the image to the prediction device.

    From a CPU image to a GPU the windows are stacked into one reused page-locked (pinned) buffer and copied
    without blocking, so the host stacks the next batch while the GPU still computes; the buffer is only
    refilled once its last copy has left (a CUDA event). Anywhere else (image already on the device, CPU
    runs) the stack is moved as it is.
    """

    def __init__(self) -> None:
        self._buffer: torch.Tensor | None = None
        self._copied: Any = None  # torch.cuda.Event of the buffer's last copy

    def __call__(self, data: torch.Tensor, slicers: Sequence[Slicer], device: torch.device) -> torch.Tensor:
        """``(B, C, *patch)`` windows of ``data`` ``(C, X, Y, Z)`` on ``device``."""
        if device.type != "cuda" or data.device.type == "cuda":
            return torch.stack([data[s] for s in slicers]).to(device)
        shape = (len(slicers), data.shape[0], *(s.stop - s.start for s in slicers[0][1:]))
        if self._buffer is None or self._buffer.shape[0] < shape[0] or self._buffer.shape[1:] != shape[1:]:
            self._buffer = torch.empty(shape, dtype=data.dtype, pin_memory=True)
            self._copied = None
        if self._copied is not None:
            self._copied.synchronize()
        staging = self._buffer[: shape[0]]
        torch.stack([data[s] for s in slicers], out=staging)
        windows = staging.to(device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record()
        return windows
