"""One segmentation from image to label map: the Python API behind ``gasa-segment``.

Data flow (architecture.md): read (SimpleITK, array ``(z, y, x)``) -> nnU-Net pre-processing ->
sliding-window prediction averaged over folds and mirrors -> back to the input grid -> label map in
exactly the input geometry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from GASACore.bundle import FoldWeights, ModelBundle
from GASACore.errors import InputError, ModelError
from GASACore.events import ProgressSink, Stage
from GASACore.inference import (
    CancelSignal,
    ResolvedDevice,
    SlidingWindowConfig,
    check_window_count,
    predict_sliding_window,
    select_device,
)
from GASACore.inference.cpu_runtime import ForwardRecord
from GASACore.io import Geometry, LoadedImage, read_image
from GASACore.options import SegmentOptions
from GASACore.preprocessing import (
    AIR_HU,
    PreprocessingConfig,
    air_threshold,
    check_run_memory,
    preprocess,
    restore_segmentation,
)
from GASACore.preprocessing.orientation import axis_alignment

__all__ = ["AIR_HU", "SegmentationResult", "segment"]

logger = logging.getLogger(__name__)


@dataclass
class SegmentationResult:
    """A label map ``(z, y, x)`` in the input's geometry, with the model and timings (seconds).

    ``forward`` says what ran the network: on the CPU its backend (``onednn``, ``eager``, ``openvino``), why,
    and the threads.
    """

    labels: np.ndarray
    geometry: Geometry
    model: ModelBundle
    device: str
    timings: dict[str, float] = field(default_factory=dict)
    device_reason: str = ""
    forward: ForwardRecord = field(default_factory=ForwardRecord)


class _LazyFolds(Sequence):
    """The model's fold state dicts, read (and hash-checked) only when the predictor reaches them."""

    def __init__(self, model: ModelBundle, folds: Sequence[FoldWeights], network: torch.nn.Module) -> None:
        self._model, self._folds, self._network = model, list(folds), network

    def __len__(self) -> int:
        return len(self._folds)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._model.load_fold(self._folds[index], self._network)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return (self[i] for i in range(len(self)))


def _air_threshold(model: ModelBundle, config: PreprocessingConfig) -> float | None:
    """``air_threshold`` of the model's first channel, with a warning where the model is not CT-normalised."""
    threshold = air_threshold(config.normalization_schemes[0], config.intensity_properties[0])
    if threshold is None:
        logger.warning("air-window skipping needs a CT-normalised model; %s is not, so it is off", model.name)
    return threshold


def _check_run_size(loaded: LoadedImage, model: ModelBundle, config: PreprocessingConfig, opts: SegmentOptions) -> None:
    """Refuse, before resampling, a run whose memory estimate or window count exceeds its limit (from sizes only)."""
    estimate = check_run_memory(
        loaded.array.shape[-3:],
        loaded.geometry.spacing_zyx,
        config,
        num_classes=model.architecture.num_classes,
        patch_size=model.patch_size,
        batch_size=opts.batch_size,
        source=loaded.source,
    )
    padded = [max(s, p) for s, p in zip(estimate.resampled_shape, model.patch_size, strict=True)]
    check_window_count(padded, model.patch_size, opts.window_step)


def _load(
    model: str | Path, options: SegmentOptions, progress: ProgressSink | None, cancel: CancelSignal | None
) -> ModelBundle:
    """A model path, or a catalogue id resolved (downloaded on first use unless ``options.offline``), loaded.

    Download progress goes to ``progress.emit`` when the sink takes events (an ``EventSink``).
    """
    from GASACore.models import load_model_spec

    events = getattr(progress, "emit", None)
    return load_model_spec(model, folds=options.folds.names, offline=options.offline, progress=events, cancel=cancel)


def _stage(progress: ProgressSink | None, stage: Stage, fraction: float) -> None:
    if progress is not None:
        progress(stage, fraction)


def segment(
    image: str | Path | LoadedImage,
    model: str | Path | ModelBundle,
    *,
    options: SegmentOptions | None = None,
    series: str | None = None,
    progress: ProgressSink | None = None,
    cancel: CancelSignal | None = None,
    resolved_device: ResolvedDevice | None = None,
) -> SegmentationResult:
    """Segment one CT.

    Args:
        image: a file (NIfTI, NRRD, MHA), a DICOM series folder, or an already read ``LoadedImage``.
        model: a bundle folder or zip, an nnU-Net v2 results folder, a catalogue id (``ID`` or ``ID@VERSION``,
            downloaded and verified on first use unless ``options.offline``), or a loaded ``ModelBundle``.
        options: how the model runs (:class:`~GASACore.options.SegmentOptions`: device, folds, TTA, step
            size, fast mode, air skipping, batch size).
        series: SeriesInstanceUID to pick when a DICOM folder holds several series.
        progress: a :class:`~GASACore.events.ProgressSink`, called as ``progress(stage, fraction)`` with the
            :class:`~GASACore.events.Stage` s load, preprocess, predict, export.
        cancel: a ``threading.Event`` or a callable returning ``True`` to stop; raises ``Cancelled``.
        resolved_device: ``select_device(options.device)``, resolved once by a caller that segments several images
            (the CLI); ``None``: resolved here.

    Returns:
        The label map ``(z, y, x)`` (uint8, or uint16 above 255 labels) and the input geometry.

    Raises:
        InputError: unreadable or unsuitable image. ModelError: bad model, or one that does not fit
        the input. Cancelled: cancelled. GASAError: non-finite network output or device problems.
    """
    opts = options or SegmentOptions()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    _stage(progress, Stage.LOAD, 0.0)
    folds = opts.folds.names  # empty: every fold
    bundle = model.select_folds(folds) if isinstance(model, ModelBundle) else _load(model, opts, progress, cancel)
    loaded = image if isinstance(image, LoadedImage) else read_image(image, series=series)
    if bundle.architecture.num_input_channels != 1:
        raise ModelError(
            f"model {bundle.name} expects {bundle.architecture.num_input_channels} input channels; "
            f"got 1 image ({loaded.source}). Multi-channel inputs are not supported yet."
        )
    run_device, reason = resolved_device if resolved_device is not None else select_device(opts.device)
    logger.info("device: %s (%s)", run_device, reason)
    timings["load"] = time.perf_counter() - start

    stage_start = time.perf_counter()
    _stage(progress, Stage.PREPROCESS, 0.0)
    config = bundle.preprocessing
    _check_run_size(loaded, bundle, config, opts)  # size is the same in any axis order
    alignment = axis_alignment(loaded.geometry.direction, bundle.orientation) if bundle.orientation else None
    array, spacing = loaded.array, loaded.geometry.spacing_zyx
    if alignment is not None and not alignment.identity:
        logger.info("re-orienting the input to the model's %s (%s)", bundle.orientation, alignment)
        array, spacing = np.ascontiguousarray(alignment.apply(array)), alignment.spacing_zyx(spacing)
    data, properties = preprocess(array[None], spacing, config, device=run_device)
    del array
    timings["preprocess"] = time.perf_counter() - stage_start
    _stage(progress, Stage.PREPROCESS, 1.0)

    stage_start = time.perf_counter()
    network = bundle.build_network()
    window_config = SlidingWindowConfig(
        patch_size=bundle.patch_size,
        step_size=opts.window_step,
        mirror_axes=bundle.mirror_axes if opts.mirroring else (),
        batch_size=opts.batch_size,
        device=run_device,
        skip_threshold=_air_threshold(bundle, config) if opts.skip_air else None,
        cpu_backend=opts.cpu_backend,
        regions=bundle.regions_class_order is not None,
    )
    forward = ForwardRecord()
    logits = predict_sliding_window(
        network,
        torch.from_numpy(np.ascontiguousarray(data)),
        num_classes=bundle.architecture.num_classes,
        config=window_config,
        fold_weights=_LazyFolds(bundle, bundle.folds[: opts.max_folds], network),
        progress=progress,
        cancel=cancel,
        record=forward,
    )
    del data, network
    timings["predict"] = time.perf_counter() - stage_start

    stage_start = time.perf_counter()
    _stage(progress, Stage.EXPORT, 0.0)
    labels = restore_segmentation(
        logits, properties, config, device=run_device, regions_class_order=bundle.regions_class_order
    )
    del logits
    if alignment is not None and not alignment.identity:
        labels = np.ascontiguousarray(alignment.restore(labels))
    expected_shape = tuple(reversed(loaded.geometry.size))
    if labels.shape != expected_shape:
        raise InputError(f"internal error: label map shape {labels.shape} differs from the input's {expected_shape}")
    timings["restore"] = time.perf_counter() - stage_start
    timings["total"] = time.perf_counter() - start
    return SegmentationResult(labels, loaded.geometry, bundle, str(run_device), timings, reason, forward)
