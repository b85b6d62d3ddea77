"""Range checks of every numeric field of a model, before anything is built or allocated from it.

A model file names sizes that become allocations (patch size, features, classes) and values that become
arithmetic (spacing, intensity statistics). Each is checked against a plausible range here, once a model is
parsed and before a network is built, so a damaged or hostile model is refused in one line naming the field,
the value and the allowed range, instead of allocating tens of GB or producing NaNs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from GASACore.errors import ModelError

if TYPE_CHECKING:
    from GASACore.bundle.model import ModelBundle

__all__ = [
    "MAX_CLASSES",
    "MAX_FEATURES",
    "MAX_INPUT_CHANNELS",
    "MAX_PATCH_SIDE",
    "MAX_PATCH_VOXELS",
    "MAX_SPACING_MM",
    "check_model_ranges",
]

#: Longest side of a network window in voxels.
MAX_PATCH_SIDE = 1024
#: Most voxels in a network window (256^3; nnU-Net's largest plans stay well below it).
MAX_PATCH_VOXELS = 256**3
#: Largest target spacing in mm (exclusive).
MAX_SPACING_MM = 100.0
#: Most network outputs (num_classes).
MAX_CLASSES = 1000
#: Most image channels a model takes.
MAX_INPUT_CHANNELS = 64
#: Most features of one U-Net stage.
MAX_FEATURES = 4096
#: Most stages of a U-Net.
MAX_STAGES = 12
#: Largest convolution kernel side and stride.
MAX_KERNEL = 15
MAX_STRIDE = 8
#: Most convolutions or blocks of one stage.
MAX_CONVS = 64
#: Largest magnitude of an intensity statistic (HU and MR intensities stay far below it).
MAX_INTENSITY = 1e7


class _Checker:
    """Raises on the first range violation of a model, naming the file and field it came from."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, value: Any, allowed: str) -> None:
        raise ModelError(f"{self.source}: {field} must be {allowed}, got {value!r}")

    def ints(self, field: str, values: Iterable[Any], low: int, high: int, *, shown: Any = None) -> None:
        """Each of ``values`` an integer in ``low..high``; the message shows ``shown`` (default: the values)."""
        values = list(values)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                if shown is None:
                    shown = values if len(values) > 1 else value
                self.fail(field, shown, f"integers in {low}..{high}")

    def floats(self, field: str, values: Iterable[Any], low: float, high: float, *, low_open: bool = False) -> None:
        values = list(values)
        for value in values:
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
            above = number > low if low_open else number >= low
            if not (math.isfinite(number) and above and number < high):
                bracket = "(" if low_open else "["
                shown = values if len(values) > 1 else value
                self.fail(field, shown, f"finite numbers in {bracket}{low:g}, {high:g})")


def _source(model: ModelBundle) -> str:
    from GASACore.bundle.model import ModelSource

    name = "model.json" if model.source is ModelSource.BUNDLE else "plans.json"
    return f"model {model.root / name}"


def check_model_ranges(model: ModelBundle) -> None:
    """Refuse a model with a numeric field outside its plausible range.

    Checked: patch size (positive integers, each at most 1024, at most 256^3 voxels), spacing (finite, in
    (0, 100) mm), classes (1..1000), input channels (1..64), stages, features, kernels, strides and convolution
    counts of the plan, GASA block options, intensity statistics (finite, std >= 0), anisotropy threshold,
    mirror axes (0..2) and region class order (label values 0..1000).

    Raises:
        ModelError: ``model .../model.json: architecture.plan.patch_size must be ..., got ...``.
    """
    check = _Checker(_source(model))
    architecture, plan = model.architecture, model.architecture.plan
    _check_patch(check, "architecture.plan.patch_size", plan.patch_size)
    _check_patch(check, "preprocessing.patch_size", model.preprocessing.patch_size)
    check.ints("architecture.num_classes", [architecture.num_classes], 1, MAX_CLASSES)
    check.ints("architecture.num_input_channels", [architecture.num_input_channels], 1, MAX_INPUT_CHANNELS)
    if not 2 <= len(plan.features_per_stage) <= MAX_STAGES:
        check.fail("architecture.plan.features_per_stage", list(plan.features_per_stage), f"2..{MAX_STAGES} stages")
    check.ints("architecture.plan.features_per_stage", plan.features_per_stage, 1, MAX_FEATURES)
    kernels, strides = [list(t) for t in plan.kernel_sizes], [list(t) for t in plan.strides]
    check.ints("architecture.plan.kernel_sizes", (k for t in kernels for k in t), 1, MAX_KERNEL, shown=kernels)
    check.ints("architecture.plan.strides", (s for t in strides for s in t), 1, MAX_STRIDE, shown=strides)
    counts = ("n_conv_per_stage", "n_conv_per_stage_decoder", "n_blocks_per_stage", "n_conv_per_stage_decoder_resenc")
    for name in counts:
        check.ints(f"architecture.plan.{name}", getattr(plan, name), 1, MAX_CONVS)
    _check_block(check, architecture.block_options)
    _check_preprocessing(check, model)
    if model.mirror_axes is not None:
        check.ints("inference.mirror_axes", model.mirror_axes, 0, 2)
    if model.regions_class_order is not None:
        check.ints("inference.regions_class_order", model.regions_class_order, 0, MAX_CLASSES)


def _check_patch(check: _Checker, field: str, patch: Sequence[int]) -> None:
    check.ints(field, patch, 1, MAX_PATCH_SIDE)
    voxels = math.prod(patch)
    if voxels > MAX_PATCH_VOXELS:
        check.fail(field, list(patch), f"at most {MAX_PATCH_VOXELS:,} voxels (256^3), not {voxels:,}")


def _check_block(check: _Checker, options: Any) -> None:
    if options is None:
        return
    for name, high in (("dim", MAX_FEATURES), ("heads", 256)):
        if hasattr(options, name):
            check.ints(f"architecture.block_options.{name}", [getattr(options, name)], 1, high)


def _check_preprocessing(check: _Checker, model: ModelBundle) -> None:
    config = model.preprocessing
    check.floats("preprocessing.spacing", config.spacing, 0.0, MAX_SPACING_MM, low_open=True)
    check.floats("preprocessing.anisotropy_threshold", [config.anisotropy_threshold], 0.0, 1e6, low_open=True)
    for channel, stats in enumerate(config.intensity_properties):
        if stats is None:
            continue
        for name in ("mean", "percentile_00_5", "percentile_99_5"):
            field = f"preprocessing.intensity_properties[{channel}].{name}"
            check.floats(field, [getattr(stats, name)], -MAX_INTENSITY, MAX_INTENSITY)
        std_field = f"preprocessing.intensity_properties[{channel}].std"
        check.floats(std_field, [stats.std], 0.0, MAX_INTENSITY)
