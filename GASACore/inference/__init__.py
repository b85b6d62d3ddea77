"""Sliding-window inference: nnU-Net v2's window rules, Gaussian blending, mirroring TTA, fold ensembling,
device choice, CUDA out-of-memory fallback, progress and cancel callbacks.
"""

from __future__ import annotations

from GASACore.inference.accumulation import background_logits
from GASACore.inference.callbacks import CancelSignal, ProgressCounter, cancel_checker
from GASACore.inference.config import Autocast, SlidingWindowConfig
from GASACore.inference.device import (
    CudaEnvironment,
    DeviceDecision,
    GpuInfo,
    ResolvedDevice,
    accumulation_fits,
    arch_supported,
    available_cpus,
    check_device,
    cpu_threads,
    cuda_environment,
    cuda_unusable_reason,
    decide_device,
    device_report,
    resolve_num_threads,
    select_device,
    unusable_reason,
    with_cpu_fallback,
)
from GASACore.inference.sliding_window import (
    SKIPPED_LOGITS,
    accumulation_bytes,
    predict_sliding_window,
    retry_on_cuda_oom,
)
from GASACore.inference.windows import (
    Slicer,
    check_window_count,
    gaussian_importance,
    mirror_combinations,
    pad_to_patch,
    window_slicers,
    window_starts,
    window_within,
)

__all__ = [
    "SKIPPED_LOGITS",
    "Autocast",
    "CancelSignal",
    "CudaEnvironment",
    "DeviceDecision",
    "GpuInfo",
    "ProgressCounter",
    "ResolvedDevice",
    "Slicer",
    "SlidingWindowConfig",
    "accumulation_bytes",
    "accumulation_fits",
    "arch_supported",
    "available_cpus",
    "background_logits",
    "cancel_checker",
    "check_device",
    "check_window_count",
    "cpu_threads",
    "cuda_environment",
    "cuda_unusable_reason",
    "decide_device",
    "device_report",
    "gaussian_importance",
    "mirror_combinations",
    "pad_to_patch",
    "predict_sliding_window",
    "resolve_num_threads",
    "retry_on_cuda_oom",
    "select_device",
    "unusable_reason",
    "window_slicers",
    "window_starts",
    "window_within",
    "with_cpu_fallback",
]
