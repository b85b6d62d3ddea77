"""One segmentation from image to label map: the Python API behind ``gasa-segment``.

Data flow (architecture.md): read (SimpleITK, array ``(z, y, x)``) -> nnU-Net pre-processing ->
sliding-window prediction averaged over folds and mirrors -> back to the input grid -> label map in
exactly the input geometry.

A model's :class:`~GASACore.recipe.RunRecipe` (TotalSegmentator's, from the catalogue) configures these same
stages: the orientation the image is turned to, a resampling to the model's spacing before nnU-Net's
pre-processing (and order-0 back after), step size and mirroring (``--fast`` still wins), the label values
kept; a crop pre-pass runs another model first and this one on the crop; a composite runs its parts in turn
and merges them, a later part overwriting an earlier one.
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
from GASACore.malloc_env import release_free_memory
from GASACore.options import SegmentOptions
from GASACore.preprocessing import (
    AIR_HU,
    NormalizationScheme,
    PreprocessingConfig,
    air_threshold,
    check_run_memory,
    preprocess,
    restore_segmentation,
)
from GASACore.preprocessing.orientation import axis_alignment
from GASACore.preprocessing.totalseg import change_spacing, crop_box, restore_shape
from GASACore.recipe import RunRecipe, label_dtype, merge_into, remap_labels

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


#: DICOM Modality (0008,0060) values whose pixels are certainly not Hounsfield units: MR, nuclear medicine and PET,
#: ultrasound, and projection radiography (a CT model must not read them). Others (``OT`` secondary captures of a CT,
#: vendor or empty values) only get a warning, since anonymisers and converters rewrite the tag.
NOT_HOUNSFIELD_MODALITIES = frozenset({"MR", "PT", "NM", "US", "CR", "DX", "MG", "XA", "RF", "IO", "PX", "OP", "XC"})


def _check_modality(loaded: LoadedImage, model: ModelBundle) -> None:
    """Refuse a DICOM series of a modality without Hounsfield units (MR, PT...) for a model that normalises CT
    Hounsfield units; warn for any other non-CT modality."""
    scheme = model.preprocessing.normalization_schemes[0]
    modality = loaded.modality.strip().upper()
    if not modality or modality == "CT" or scheme != NormalizationScheme.CT:
        return
    if modality in NOT_HOUNSFIELD_MODALITIES:
        raise InputError(
            f"expected a CT series (Modality CT) for model {model.name}, which normalises CT Hounsfield units, got "
            f"Modality {loaded.modality} in {loaded.source}: its values are not Hounsfield units"
        )
    logger.warning(
        "%s has DICOM Modality %s, not CT: model %s reads its values as Hounsfield units; check the result",
        loaded.source, loaded.modality, model.name,
    )  # fmt: skip


def _check_run_size(
    shape: Sequence[int], spacing_zyx: Sequence[float], model: ModelBundle, opts: SegmentOptions, source: str
) -> None:
    """Refuse, before resampling, a run whose memory estimate or window count exceeds its limit (from sizes only)."""
    estimate = check_run_memory(
        shape,
        spacing_zyx,
        model.preprocessing,
        num_classes=model.architecture.num_classes,
        patch_size=model.patch_size,
        batch_size=opts.batch_size,
        source=source,
    )
    padded = [max(s, p) for s, p in zip(estimate.resampled_shape, model.patch_size, strict=True)]
    check_window_count(padded, model.patch_size, opts.window_step)


@dataclass
class _Run:
    """What every model pass of one segmentation shares: options, device, callbacks, timings."""

    opts: SegmentOptions
    device: torch.device
    source: str
    progress: ProgressSink | None
    cancel: CancelSignal | None
    timings: dict[str, float] = field(default_factory=dict)
    forward: ForwardRecord = field(default_factory=ForwardRecord)

    def add_time(self, stage: str, since: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - since


def _model_spacing_zyx(config: PreprocessingConfig) -> tuple[float, float, float]:
    """The model's target spacing in the image's ``(z, y, x)`` order (the plan gives it transposed)."""
    if len(config.spacing) != 3:
        raise ModelError(f"a resampling recipe needs a 3D target spacing, the model has {tuple(config.spacing)}")
    z, y, x = (float(config.spacing[axis]) for axis in config.transpose_backward)
    return (z, y, x)


def _logits(data: np.ndarray, model: ModelBundle, recipe: RunRecipe, run: _Run) -> torch.Tensor:
    """The sliding-window prediction stage: step and mirroring from the recipe where it sets them."""
    stage_start = time.perf_counter()
    opts = run.opts
    network = model.build_network()
    mirroring = opts.mirroring and recipe.mirroring is not False
    window_config = SlidingWindowConfig(
        patch_size=model.patch_size,
        step_size=opts.window_step if opts.fast or recipe.step_size is None else recipe.step_size,
        mirror_axes=model.mirror_axes if mirroring else (),
        batch_size=opts.batch_size,
        device=run.device,
        skip_threshold=_air_threshold(model, model.preprocessing) if opts.skip_air else None,
        cpu_backend=opts.cpu_backend,
        regions=model.regions_class_order is not None,
    )
    logits = predict_sliding_window(
        network,
        torch.from_numpy(np.ascontiguousarray(data)),
        num_classes=model.architecture.num_classes,
        config=window_config,
        fold_weights=_LazyFolds(model, model.folds[: opts.max_folds], network),
        progress=run.progress,
        cancel=run.cancel,
        record=run.forward,
    )
    run.add_time("predict", stage_start)
    return logits


def _predict(
    array: np.ndarray, spacing: Sequence[float], direction: Sequence[float], model: ModelBundle, run: _Run
) -> np.ndarray:
    """One model pass on a ``(z, y, x)`` image: the pipeline's stages as ``model.recipe`` configures them."""
    recipe = model.recipe or RunRecipe()
    opts, config = run.opts, model.preprocessing
    stage_start = time.perf_counter()
    _stage(run.progress, Stage.PREPROCESS, 0.0)
    _check_run_size(array.shape, spacing, model, opts, run.source)  # size is the same in any axis order
    orientation = recipe.orientation or model.orientation
    alignment = axis_alignment(direction, orientation) if orientation else None
    if alignment is not None and not alignment.identity:
        logger.info("re-orienting the input to the model's %s (%s)", orientation, alignment)
        array, spacing = np.ascontiguousarray(alignment.apply(array)), alignment.spacing_zyx(spacing)
    oriented_shape = array.shape
    if recipe.resample_order is not None:  # the publisher's resampling; nnU-Net's then keeps the grid
        array, spacing = change_spacing(
            array, spacing, _model_spacing_zyx(config), order=recipe.resample_order, dtype=recipe.intensity_dtype
        )
    data, properties = preprocess(array[None], spacing, config, device=run.device)
    del array
    release_free_memory()  # what pre-processing freed goes back to the system before the windows run
    run.add_time("preprocess", stage_start)
    _stage(run.progress, Stage.PREPROCESS, 1.0)

    logits = _logits(data, model, recipe, run)
    del data
    release_free_memory()  # the windows' activations and the network, kept for reuse while they ran

    stage_start = time.perf_counter()
    _stage(run.progress, Stage.EXPORT, 0.0)
    labels = restore_segmentation(
        logits, properties, config, device=run.device, regions_class_order=model.regions_class_order
    )
    del logits
    if recipe.resample_order is not None:
        labels = restore_shape(labels, oriented_shape)
    if alignment is not None and not alignment.identity:
        labels = np.ascontiguousarray(alignment.restore(labels))
    if recipe.value_map is not None:
        labels = remap_labels(labels, recipe.value_map)
    run.add_time("restore", stage_start)
    return labels


def _highest_value(model: ModelBundle) -> int:
    """The largest label value a model pass paints (after its ``value_map``)."""
    value_map = model.recipe.value_map if model.recipe is not None else None
    if value_map is not None:
        return max((target for _, target in value_map), default=0)
    return model.architecture.num_classes


def _labels(
    array: np.ndarray, spacing: Sequence[float], direction: Sequence[float], model: ModelBundle, run: _Run
) -> np.ndarray:
    """The label map ``(z, y, x)`` of ``model`` on the image: its parts merged, its crop pre-pass, or one pass."""
    recipe = model.recipe or RunRecipe()
    if recipe.parts:
        highest = max(_highest_value(part) for part in recipe.parts)
        merged = np.zeros(array.shape, dtype=label_dtype(highest))
        for part in recipe.parts:
            logger.info("running part %s of %s", part.name, model.name)
            merge_into(merged, _labels(array, spacing, direction, part, run))
        return merged if recipe.value_map is None else remap_labels(merged, recipe.value_map)
    if recipe.crop is None:
        return _predict(array, spacing, direction, model, run)
    crop = recipe.crop
    logger.info("crop pre-pass: %s finds labels %s", crop.model.name, list(crop.values))
    rough = _labels(array, spacing, direction, crop.model, run)
    box = crop_box(np.isin(rough, crop.values), spacing, crop.margin_mm)
    highest = max((label.value for label in model.labels), default=0)
    full = np.zeros(array.shape, dtype=label_dtype(highest))
    if box is None:
        logger.warning(
            "the crop pre-pass (%s) found none of labels %s: empty segmentation", crop.model.name, crop.values
        )
        return full
    window = tuple(slice(lo, hi) for lo, hi in box)
    logger.info("cropping %s to %s for %s", array.shape, tuple(hi - lo for lo, hi in box), model.name)
    cropped = array[window]  # TotalSegmentator crops the image to int32 before anything else
    cropped = cropped.astype(np.int32) if recipe.intensity_dtype == "int32" else np.ascontiguousarray(cropped)
    inner = _predict(cropped, spacing, direction, model, run)
    full = full.astype(np.result_type(full.dtype, inner.dtype), copy=False)
    full[window] = inner
    return full


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
    start = time.perf_counter()
    _stage(progress, Stage.LOAD, 0.0)
    folds = opts.folds.names  # empty: every fold
    bundle = model.select_folds(folds) if isinstance(model, ModelBundle) else _load(model, opts, progress, cancel)
    loaded = image if isinstance(image, LoadedImage) else read_image(image, series=series)
    _check_modality(loaded, bundle)
    if bundle.architecture.num_input_channels != 1:
        raise ModelError(
            f"model {bundle.name} expects {bundle.architecture.num_input_channels} input channels; "
            f"got 1 image ({loaded.source}). Multi-channel inputs are not supported yet."
        )
    run_device, reason = resolved_device if resolved_device is not None else select_device(opts.device)
    logger.info("device: %s (%s)", run_device, reason)
    run = _Run(opts, run_device, str(loaded.source), progress, cancel, {"load": time.perf_counter() - start})
    geometry = loaded.geometry
    labels = _labels(loaded.array, geometry.spacing_zyx, geometry.direction, bundle, run)
    expected_shape = tuple(reversed(geometry.size))
    if labels.shape != expected_shape:
        raise InputError(f"internal error: label map shape {labels.shape} differs from the input's {expected_shape}")
    run.timings["total"] = time.perf_counter() - start
    if run.forward.device and run.forward.device != str(run_device):  # CUDA out of memory: the CPU predicted
        run_device, reason = torch.device(run.forward.device), run.forward.reason
    return SegmentationResult(labels, geometry, bundle, str(run_device), run.timings, reason, run.forward)
