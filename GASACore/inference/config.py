"""Configuration of sliding-window inference: window size, overlap, test-time mirroring, device, precision."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from GASACore.enums import StrEnum
from GASACore.inference.accumulation import LogitSums
from GASACore.options import CpuBackend, check_batch_size, check_cpu_backend, check_step_size

__all__ = ["Autocast", "SlidingWindowConfig"]


class Autocast(StrEnum):
    """Precision of the network's forward pass on CUDA (on the CPU the network always runs in float32)."""

    FP16 = "fp16"  #: ``torch.autocast("cuda", dtype=torch.float16)``, nnU-Net's choice
    BF16 = "bf16"  #: ``torch.autocast("cuda", dtype=torch.bfloat16)``
    FP32 = "fp32"  #: no autocast

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, ``None`` for float32 (no autocast)."""
        return {Autocast.FP16: torch.float16, Autocast.BF16: torch.bfloat16}.get(self)


@dataclass(frozen=True)
class SlidingWindowConfig:
    """How :func:`~GASACore.inference.predict_sliding_window` runs. Values are checked and normalised on creation.

    Attributes:
        patch_size: window size ``(X, Y, Z)`` in voxels; the network must accept exactly this size.
        step_size: largest step between windows as a fraction of the patch, ``0 < step_size <= 1``
            (0.5 = nnU-Net's 50% overlap; smaller is slower and slightly better).
        mirror_axes: spatial axes (0 = X, 1 = Y, 2 = Z) mirrored for test-time augmentation; every
            non-empty combination is predicted (7 extra passes for 3 axes). Empty: no mirroring.
        use_gaussian: weight each window by nnU-Net's Gaussian importance map (sigma = patch / 8);
            ``False`` gives every voxel of a window weight 1.
        batch_size: windows per forward pass (nnU-Net uses 1). Halved automatically on CUDA out-of-memory.
        device: the ``torch.device`` to run on, resolved and checked once per run by
            :func:`~GASACore.inference.select_device` (``select_device(options.device).device``). ``None``:
            :func:`~GASACore.inference.predict_sliding_window` resolves ``"auto"`` itself (one-off use).
        accumulate_on_device: keep the image and the logit sums on the GPU (fast) instead of the CPU.
            ``None``: on the GPU when they take at most half of its free memory. Ignored on the CPU.
        autocast: ``"fp16"`` (default, as nnU-Net), ``"bf16"`` or ``"fp32"``; applies on CUDA only.
        skip_threshold: windows whose whole input (every channel and voxel) is below this value, in the
            units of the pre-processed image, are not predicted; voxels that only skipped windows cover
            get background logits (:func:`~GASACore.inference.accumulation.background_logits`). ``None``:
            predict every window.
        regions: the network's outputs are sigmoid regions (nnU-Net's region-based models, KiTS-style), not
            softmax classes: background is then every region strongly negative, not class 0 high.
        num_threads: CPU threads for torch during the prediction; ``None``: automatic, by the thread rule
            (:class:`~GASACore.inference.thread_governor.ThreadGovernor`: every CPU this process may use, fewer
            for tiny windows or, unless OpenMP waits passively, when other programs keep CPUs busy), unless
            ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set (then torch's setting stays).
        cpu_backend: how the network runs when ``device`` is the CPU (``auto`` = ``onednn-bf16`` on CPUs with
            AMX bf16 units, else ``onednn``; ``eager``, ``onednn``, ``onednn-bf16``, ``openvino``;
            :func:`~GASACore.inference.cpu_runtime.prepare_cpu_forward`).
        logit_sums: precision of the whole-image logit sums (:class:`~GASACore.inference.accumulation.LogitSums`):
            ``auto`` = pre-normalised float16 where they live on the CPU, float32 on a GPU.
    """

    patch_size: tuple[int, int, int]
    step_size: float = 0.5
    mirror_axes: tuple[int, ...] = (0, 1, 2)
    use_gaussian: bool = True
    batch_size: int = 1
    device: torch.device | None = None
    accumulate_on_device: bool | None = None
    autocast: Autocast | str = Autocast.FP16
    skip_threshold: float | None = None
    num_threads: int | None = None
    cpu_backend: CpuBackend | str = CpuBackend.AUTO
    logit_sums: LogitSums | str = LogitSums.AUTO
    regions: bool = False

    def __post_init__(self) -> None:
        patch = _patch_size(self.patch_size)
        step_size = check_step_size(self.step_size)
        axes = _mirror_axes(self.mirror_axes)
        batch_size = check_batch_size(self.batch_size)
        if self.device is not None and not isinstance(self.device, torch.device):
            raise ValueError(
                f"device must be a torch.device resolved with select_device, or None (auto), got {self.device!r}"
            )
        try:
            autocast = Autocast(self.autocast)
        except ValueError as err:
            expected = [a.value for a in Autocast]
            raise ValueError(f"autocast must be one of {expected}, got {self.autocast!r}") from err
        threshold = self.skip_threshold
        if threshold is not None and (not isinstance(threshold, (int, float)) or not math.isfinite(threshold)):
            raise ValueError(f"skip_threshold must be a finite number or None, got {threshold!r}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"num_threads must be an integer >= 1 or None, got {self.num_threads!r}")
        if not isinstance(self.regions, bool):
            raise ValueError(f"regions must be True or False, got {self.regions!r}")
        if self.accumulate_on_device not in (None, True, False):
            raise ValueError(f"accumulate_on_device must be True, False or None, got {self.accumulate_on_device!r}")
        object.__setattr__(self, "patch_size", patch)
        object.__setattr__(self, "step_size", step_size)
        object.__setattr__(self, "mirror_axes", axes)
        object.__setattr__(self, "batch_size", batch_size)
        object.__setattr__(self, "autocast", autocast)
        object.__setattr__(self, "cpu_backend", check_cpu_backend(self.cpu_backend))
        try:
            object.__setattr__(self, "logit_sums", LogitSums(self.logit_sums))
        except ValueError as err:
            raise ValueError(f"logit_sums must be one of {list(LogitSums.values())}, got {self.logit_sums!r}") from err
        object.__setattr__(self, "skip_threshold", None if threshold is None else float(threshold))


def _patch_size(value: Any) -> tuple[int, int, int]:
    try:
        patch = tuple(operator.index(p) for p in value if not isinstance(p, bool))
    except TypeError:
        patch = ()
    if len(patch) != 3 or len(patch) != len(value) or any(p <= 0 for p in patch):
        raise ValueError(f"patch_size must be 3 positive integers (X, Y, Z), got {value!r}")
    return patch  # type: ignore[return-value]


def _mirror_axes(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"mirror_axes must be a tuple of distinct spatial axes from 0, 1, 2, got {value!r}")
    axes = tuple(value)
    if any(not isinstance(a, int) or isinstance(a, bool) or a not in (0, 1, 2) for a in axes) or len(set(axes)) != len(
        axes
    ):
        raise ValueError(f"mirror_axes must be a tuple of distinct spatial axes from 0, 1, 2, got {value!r}")
    return axes
