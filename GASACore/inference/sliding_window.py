"""Sliding-window prediction with Gaussian blending, mirroring TTA, fold ensembling and CUDA OOM fallback.

The arithmetic is nnU-Net v2's (``nnUNetPredictor.predict_sliding_window_return_logits``): zero-pad to the
patch, windows by :func:`~GASACore.inference.windows.window_starts`, each window's prediction averaged over
the mirror combinations, multiplied by the Gaussian importance map and summed, the sum divided by the summed
weights. Two deliberate differences: on the CPU the sums are float16 *pre-normalised* (each window adds
``logits * gaussian / (weight_sums * n_folds)``, :mod:`~GASACore.inference.accumulation`), which halves their
memory without nnU-Net's float16 underflow at window corners (float32 on a GPU, or with ``logit_sums="fp32"``:
divided by ``weights * n_folds`` at the end); and all folds are summed into one accumulator, so memory holds
one logit array, never one per fold. On the CPU the network runs through the configured CPU backend
(:mod:`~GASACore.inference.cpu_session`: oneDNN by default) with the thread rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from GASACore.errors import GASAError, InputError, ModelError
from GASACore.events import ProgressSink
from GASACore.inference.accumulation import (
    BACKGROUND_LOGIT,
    add_window,
    background_logits,
    fill_uncovered,
    half_sums,
    prenormalised_weights,
    sums_dtype,
)
from GASACore.inference.callbacks import CancelSignal, ProgressCounter, cancel_checker
from GASACore.inference.config import SlidingWindowConfig
from GASACore.inference.cpu_runtime import ForwardRecord
from GASACore.inference.cpu_session import CpuSession
from GASACore.inference.device import accumulation_fits, cpu_threads, free_cuda_memory, select_device
from GASACore.inference.transfer import WindowFeed
from GASACore.inference.windows import (
    Slicer,
    gaussian_importance,
    mirror_combinations,
    pad_to_patch,
    window_slicers,
    window_within,
)

__all__ = [
    "SKIPPED_LOGITS",
    "accumulation_bytes",
    "predict_sliding_window",
    "retry_on_cuda_oom",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Logits of voxels covered only by skipped windows in a softmax model: ``(background, every other class)``;
#: region-based models get :func:`~GASACore.inference.accumulation.background_logits` with ``regions=True``.
SKIPPED_LOGITS = (BACKGROUND_LOGIT, -BACKGROUND_LOGIT)


def accumulation_bytes(num_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> int:
    """Bytes of the image copy, logit sums and weight sums kept on the accumulation device (all float32)."""
    return 4 * (num_channels + num_classes + 1) * int(np.prod([int(s) for s in spatial_shape]))


def retry_on_cuda_oom(
    attempt: Callable[[bool, int], T],
    *,
    device: torch.device,
    on_device: bool,
    batch_size: int,
    last_resort: Callable[[], T] | None = None,
) -> T:
    """Run ``attempt(on_device, batch_size)``, degrading on ``torch.cuda.OutOfMemoryError`` only.

    First OOM with accumulation on the GPU: warn, free memory, retry accumulating on the CPU. Further OOMs:
    halve the batch while it is above 1. OOM at batch 1 on the CPU accumulator: ``last_resort()`` (the whole
    prediction on the CPU) when given, else raise.

    Args:
        attempt: the whole prediction, restartable from scratch.
        device: the CUDA device whose cache is freed between attempts.
        on_device: whether the first attempt accumulates on the GPU.
        batch_size: windows per forward pass of the first attempt.
        last_resort: what to run when even the leanest GPU attempt runs out of memory (after freeing it).

    Returns:
        What the first successful attempt (or the last resort) returns.

    Raises:
        GASAError: still out of memory with batch 1 and accumulation on the CPU, and no ``last_resort``.
    """
    while True:
        try:
            return attempt(on_device, batch_size)
        except torch.cuda.OutOfMemoryError as err:
            reason = (str(err).splitlines() or ["CUDA out of memory"])[0]
            if on_device:
                logger.warning("CUDA out of memory accumulating on %s (%s); retrying on the CPU", device, reason)
                on_device = False
            elif batch_size > 1:
                batch_size //= 2
                logger.warning("CUDA out of memory (%s); retrying with %d window(s) per batch", reason, batch_size)
            elif last_resort is not None:
                logger.warning("CUDA out of memory on %s with 1 window per batch (%s); predicting on the CPU",
                               device, reason)  # fmt: skip
                resort = last_resort
                break
            else:
                raise GASAError(
                    f"CUDA ran out of memory on {device} with 1 window per batch and logits on the CPU ({reason}); "
                    "expected a GPU with more free memory: close other GPU programs or use device 'cpu'"
                ) from err
        free_cuda_memory(device)
    free_cuda_memory(device)  # outside the except block: the failed attempt's tensors are released
    return resort()


def _on_cpu(run: _Run, record: ForwardRecord) -> torch.Tensor:
    """The last resort after CUDA out-of-memory: the whole prediction again, network and logits on the CPU.

    ``record`` then says ``cpu``, with the reason, so that the run's report names the device that did the work.
    """
    cpu = torch.device("cpu")
    record.reason = f"CUDA out of memory on {record.device or run.device} with 1 window per batch: predicted on the CPU"
    record.device = "cpu"
    run.network.to(cpu)
    return _accumulate(replace(run, device=cpu), False, run.config.batch_size)


@dataclass(frozen=True)
class _Run:
    """Everything one (restartable) prediction attempt needs."""

    network: nn.Module
    data: torch.Tensor  # (C, X, Y, Z) float32 padded image on the CPU
    windows: list[Slicer]  # windows that are predicted (not skipped)
    folds: Sequence[Mapping[str, Any] | None]  # indexed lazily: one state dict in memory at a time
    num_classes: int
    config: SlidingWindowConfig
    device: torch.device
    progress: ProgressCounter
    check_cancel: Callable[[], None]
    cpu: CpuSession | None = None  # the CPU backend and thread rule; None on CUDA
    feed: WindowFeed = field(default_factory=WindowFeed)


def _as_logits(output: Any, expected: tuple[int, ...]) -> torch.Tensor:
    if isinstance(output, (list, tuple)) and output:  # deep supervision: the first output is full resolution
        output = output[0]
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelError(f"the network must return logits of shape {expected} (B, K, X, Y, Z), got {got}")
    return output.float()


def _autocast_dtype(run: _Run) -> torch.dtype | None:
    """The autocast dtype in effect: only on CUDA. On the CPU the precision is the CPU backend's (``onednn-bf16``:
    bfloat16 convolutions routed by hand, measured faster and closer to float32 than ``torch.autocast("cpu")``)."""
    return run.config.autocast.dtype if run.device.type == "cuda" else None  # type: ignore[union-attr]


def _autocast(run: _Run) -> AbstractContextManager[Any]:
    dtype = _autocast_dtype(run)
    return nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)


def _predict_batch(run: _Run, batch: torch.Tensor) -> torch.Tensor:
    """Mirror-averaged float32 logits ``(B, K, X, Y, Z)`` of a batch ``(B, C, X, Y, Z)`` on ``run.device``."""
    expected = (batch.shape[0], run.num_classes, *run.config.patch_size)
    combos = mirror_combinations(run.config.mirror_axes)
    forward = run.network if run.cpu is None else run.cpu
    with _autocast(run):
        prediction = _as_logits(forward(batch), expected)
        for axes in combos:
            flipped = _as_logits(forward(torch.flip(batch, axes)), expected)
            prediction = prediction + torch.flip(flipped, axes)
    if combos:
        prediction /= len(combos) + 1
    return prediction


def _check_finite(prediction: torch.Tensor, first: int, fold_index: int, run: _Run) -> None:
    finite = torch.isfinite(prediction).flatten(1).all(dim=1)
    if bool(finite.all()):
        return
    bad = int((~finite).nonzero()[0, 0])
    start = tuple(s.start for s in run.windows[first + bad][1:])
    autocast = run.config.autocast.value if _autocast_dtype(run) is not None else None  # type: ignore[union-attr]
    hint = f" under {autocast} autocast" if autocast else ""
    raise GASAError(
        f"the network returned non-finite logits (NaN or inf){hint} in fold {fold_index} "
        f"(of {len(run.folds)}), window {first + bad + 1} of {len(run.windows)} starting at "
        f"voxel {start} (X, Y, Z) of the padded image; expected finite logits"
    )


def _load_fold(network: nn.Module, state: Mapping[str, Any] | None, fold_index: int) -> None:
    if state is None:
        return
    try:
        network.load_state_dict(state)
    except torch.cuda.OutOfMemoryError:  # a RuntimeError too: leave it to retry_on_cuda_oom
        raise
    except RuntimeError as err:  # load_state_dict reports missing/unexpected keys and shape mismatches this way
        raise ModelError(f"the weights of fold {fold_index} do not fit the network: {err}") from err


def _predict_fold(
    run: _Run,
    data: torch.Tensor,
    logits: torch.Tensor,
    gaussian: torch.Tensor | None,
    fold_index: int,
    batch: int,
    divisor: torch.Tensor | None = None,
) -> None:
    """Add the Gaussian-weighted predictions of every window of one fold to ``logits`` (K, X, Y, Z).

    With ``divisor`` (pre-normalised sums) each window adds its share ``logits * gaussian / divisor``.
    """
    for first in range(0, len(run.windows), batch):
        run.check_cancel()
        if run.cpu is not None:
            run.cpu.before_batch()
        slicers = run.windows[first : first + batch]
        windows = run.feed(data, slicers, run.device)
        prediction = _predict_batch(run, windows).to(logits.device)
        _check_finite(prediction, first, fold_index, run)
        for slicer, window_logits in zip(slicers, prediction, strict=True):
            add_window(logits, slicer, window_logits, gaussian, divisor)
        del windows, prediction
        run.progress.advance(len(slicers))


def _weight_sums(
    shape: Sequence[int], windows: Sequence[Slicer], gaussian: torch.Tensor | None, device: torch.device
) -> torch.Tensor:
    weights = torch.zeros(tuple(shape), dtype=torch.float32, device=device)
    for slicer in windows:
        weights[slicer[1:]] += 1.0 if gaussian is None else gaussian
    return weights


def _normalise(logits: torch.Tensor, weights: torch.Tensor, n_folds: int, background: Sequence[float]) -> None:
    """Divide the logit sums by the weight sums of all folds in place; uncovered voxels get ``background``."""
    uncovered = weights == 0
    any_uncovered = bool(uncovered.any())
    if n_folds > 1:
        weights *= n_folds
    if any_uncovered:
        weights[uncovered] = 1.0
    logits /= weights
    fill_uncovered(logits, uncovered if any_uncovered else None, background)


def _accumulate(run: _Run, on_device: bool, batch: int) -> torch.Tensor:
    """One attempt: every fold and window; returns averaged logits (K, X, Y, Z), not an inference tensor."""
    target = run.device if on_device else torch.device("cpu")
    logger.info(
        "predicting %d window(s) x %d fold(s) x %d mirror(s) on %s, batch %d, logits accumulated on %s",
        len(run.windows), len(run.folds), len(mirror_combinations(run.config.mirror_axes)) + 1,
        run.device, batch, target,
    )  # fmt: skip
    run.progress.restart()
    half = half_sums(run.config.logit_sums, target)
    with torch.inference_mode(False):  # a normal tensor: callers may modify the result in place
        logits = torch.zeros((run.num_classes, *run.data.shape[1:]), dtype=sums_dtype(half), device=target)
    with torch.inference_mode():
        data = run.data.to(target)
        gaussian = gaussian_importance(run.config.patch_size, device=target) if run.config.use_gaussian else None
        divisor, uncovered = (
            prenormalised_weights(_weight_sums(logits.shape[1:], run.windows, gaussian, target), len(run.folds))
            if half
            else (None, None)
        )
        for fold_index in range(len(run.folds)):
            _load_fold(run.network, run.folds[fold_index], fold_index)
            if run.cpu is not None:
                run.cpu.prepare(run.network)
            _predict_fold(run, data, logits, gaussian, fold_index, batch, divisor)
        del data, divisor
        background = background_logits(run.num_classes, regions=run.config.regions)
        if half:
            fill_uncovered(logits, uncovered, background)
        else:
            _normalise(
                logits, _weight_sums(logits.shape[1:], run.windows, gaussian, target), len(run.folds), background
            )
    return logits


def _checked_image(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    tensor = torch.as_tensor(image)
    if tensor.dim() != 4 or 0 in tensor.shape:
        raise InputError(f"the image must be a non-empty (C, X, Y, Z) array, got shape {tuple(tensor.shape)}")
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int16, torch.int32, torch.uint8, torch.int64)):
        raise InputError(f"the image must hold real numbers (float32 after pre-processing), got {tensor.dtype}")
    tensor = tensor.detach().to(device="cpu", dtype=torch.float32)
    if not bool(torch.isfinite(tensor).all()):
        raise InputError("the image must be finite after pre-processing, got NaN or inf values")
    return tensor


def _device(config: SlidingWindowConfig) -> torch.device:
    """The configured device; only a one-off call without one resolves ``"auto"`` here."""
    if config.device is not None:
        return config.device
    device, reason = select_device("auto")
    logger.info("device %s: %s", device, reason)
    return device


def _accumulate_on_device(config: SlidingWindowConfig, device: torch.device, data: torch.Tensor, classes: int) -> bool:
    if device.type != "cuda":
        return False
    if config.accumulate_on_device is not None:
        return config.accumulate_on_device
    required = accumulation_bytes(data.shape[0], classes, data.shape[1:])
    free, _ = torch.cuda.mem_get_info(device)
    fits = accumulation_fits(required, free)
    logger.info("logits need %.2f GiB, %.2f GiB free on %s: accumulating on the %s", required / 2**30,
                free / 2**30, device, "GPU" if fits else "CPU")  # fmt: skip
    return fits


def _active_windows(
    data: torch.Tensor, windows: Sequence[Slicer], threshold: float | None, image_region: Slicer
) -> list[Slicer]:
    """The windows to predict: all, or (``threshold`` set) those whose image voxels are not all below it.

    Only voxels inside ``image_region`` (the un-padded image) count: zero padding is not image, so an image
    of air smaller than the patch is skipped like any other.
    """
    if threshold is None:
        return list(windows)
    active = []
    for window in windows:
        seen = window_within(window, image_region)
        if seen is not None and not bool(data[seen].amax() < threshold):
            active.append(window)
    return active


@contextmanager
def _cudnn_benchmark(device: torch.device) -> Iterator[None]:
    """Let cuDNN pick the fastest convolution algorithms for the fixed window size, as nnU-Net does."""
    before = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _cpu_session(
    config: SlidingWindowConfig, device: torch.device, channels: int, record: ForwardRecord
) -> CpuSession | None:
    """The CPU backend and thread rule of a CPU run (``None`` on CUDA)."""
    if device.type != "cpu":
        return None
    window = (config.batch_size, channels, *config.patch_size)
    return CpuSession(config.cpu_backend, window_shape=window, num_threads=config.num_threads, record=record)


def predict_sliding_window(
    network: nn.Module,
    image: torch.Tensor | np.ndarray,
    *,
    num_classes: int,
    config: SlidingWindowConfig,
    fold_weights: Sequence[Mapping[str, Any]] | None = None,
    progress: ProgressSink | None = None,
    cancel: CancelSignal | None = None,
    record: ForwardRecord | None = None,
) -> torch.Tensor:
    """Predict the logits of a whole pre-processed image with a network that takes fixed-size windows.

    The network is put in eval mode (its training flag is restored afterwards) and moved to the device;
    with ``fold_weights`` it holds the last fold's weights afterwards.

    Args:
        network: maps ``(B, C, *config.patch_size)`` float32 to logits ``(B, num_classes, *config.patch_size)``
            (a list/tuple output counts by its first, full-resolution entry).
        image: ``(C, X, Y, Z)`` pre-processed image (nnU-Net's transposed order, normalised intensities).
        num_classes: logit channels ``K`` of the network (background included).
        config: window size, overlap, mirroring, Gaussian, batch, device and precision.
        fold_weights: state dicts loaded into ``network`` one after another; the logits are averaged over
            them. Indexed (``fold_weights[i]``) only when fold ``i`` starts, so a lazy sequence keeps one
            state dict in memory at a time. ``None``: the network's current weights, once.
        progress: called as ``progress("predict", fraction)`` with the fraction of (windows x folds) done,
            increasing, the last call with exactly 1.0. Skipped windows (``skip_threshold``) cost nothing
            and are not counted.
        cancel: a ``threading.Event`` or a callable returning ``True``; checked before every window batch.
        record: filled in with what ran the forward passes (device, CPU backend and why, threads).

    Returns:
        Logits ``(K, X, Y, Z)`` on the CPU, the image's spatial size, averaged over mirrors and folds: float16
        when the sums were pre-normalised float16 (``config.logit_sums``; the default on the CPU), else float32.

    Raises:
        InputError: ``image`` is not a finite real ``(C, X, Y, Z)`` array.
        ModelError: a fold's weights do not fit the network, or its output has the wrong shape.
        GASAError: non-finite network output (naming fold and window). CUDA out of memory is not raised: the
            prediction is retried leaner (logits on the CPU, smaller batches), and at last on the CPU.
        Cancelled: ``cancel`` was set; at most one more window batch runs after it is.
        ValueError: ``num_classes`` < 1, an empty ``fold_weights`` or a bad ``cancel``.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    folds: Sequence[Mapping[str, Any] | None] = [None] if fold_weights is None else fold_weights
    if len(folds) == 0:
        raise ValueError("fold_weights must hold at least one state dict (or be None), got an empty sequence")
    check_cancel = cancel_checker(cancel)
    data, unpad = pad_to_patch(_checked_image(image), config.patch_size)
    windows = window_slicers(data.shape[1:], config.patch_size, config.step_size)
    active = _active_windows(data, windows, config.skip_threshold, unpad)
    if len(active) < len(windows):
        logger.info("skipping %d of %d window(s) below %s", len(windows) - len(active), len(windows),
                    config.skip_threshold)  # fmt: skip
    device = _device(config)
    reporter = ProgressCounter(progress, total=len(active) * len(folds))
    record = record if record is not None else ForwardRecord()
    record.device = str(device)
    cpu = _cpu_session(config, device, data.shape[0], record)
    run = _Run(network, data, active, folds, num_classes, config, device, reporter, check_cancel, cpu)
    was_training = network.training
    network.eval()
    network.to(device)
    try:
        reporter.start()
        with cpu_threads(config.num_threads), _cudnn_benchmark(device):
            on_device = _accumulate_on_device(config, device, data, num_classes)
            logits = retry_on_cuda_oom(
                lambda on_gpu, batch: _accumulate(run, on_gpu, batch),
                device=device, on_device=on_device, batch_size=config.batch_size,
                last_resort=lambda: _on_cpu(run, record),
            )  # fmt: skip
    finally:
        network.train(was_training)
    logits = logits.to("cpu")[unpad].contiguous()
    reporter.finish()
    return logits
