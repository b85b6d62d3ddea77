"""How much memory one run will need, estimated from the header before any resampling, and the check that refuses it.

The image a reader returns is bounded by :mod:`GASACore.io.limits`; what a run builds from it is not: a header
whose spacing is far from the model's (a 3 mm CT for a 0.001 mm model, or a 1000 mm "spacing bomb" for a 1.5 mm
one) resamples a 1 KB image into terabytes. :func:`estimate_run_bytes` adds up the peak from the sizes alone
(nothing is allocated):

- the input image as float32 and its resampled copy (``C x`` the resampled voxels, float32);
- the logit sums ``K x`` resampled voxels (float32, the larger of the two accumulation precisions) and the weight
  sums (float32);
- the network's activations: :data:`ACTIVATION_FACTOR` float32 values per patch voxel and window of a batch.

:func:`check_run_memory` refuses a run above :func:`max_run_bytes`: ``GASA_MAX_RUN_BYTES`` (``16GB``,
``2000000000``, as :func:`~GASACore.io.limits.parse_byte_size` reads it) or three quarters of the machine's memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from GASACore.errors import ImageTooLargeError, InputError
from GASACore.io.limits import format_bytes, parse_byte_size, physical_memory_bytes
from GASACore.preprocessing.config import PreprocessingConfig
from GASACore.preprocessing.resampling import compute_new_shape

__all__ = [
    "ACTIVATION_FACTOR",
    "MAX_RUN_BYTES_ENV",
    "RunEstimate",
    "check_run_memory",
    "estimate_run_bytes",
    "max_run_bytes",
    "resampled_shape",
]

#: Environment variable that sets the largest estimated peak (bytes) of one run.
MAX_RUN_BYTES_ENV = "GASA_MAX_RUN_BYTES"
#: float32 activations kept per patch voxel and window during a forward pass (encoder and decoder features of a
#: nnU-Net-sized network, with skip connections): a generous bound, not a measurement of one network.
ACTIVATION_FACTOR = 64
#: Used when the machine's memory cannot be determined.
_FALLBACK_LIMIT = 8 * 1000**3


@dataclass(frozen=True)
class RunEstimate:
    """The estimated peak of one run and what it is made of (bytes; shapes in the network's ``(X, Y, Z)`` order)."""

    resampled_shape: tuple[int, ...]
    image: int
    resampled: int
    logits: int
    activations: int

    @property
    def total(self) -> int:
        """Sum of the parts: input, resampled image, logit and weight sums and activations."""
        return self.image + self.resampled + self.logits + self.activations


def resampled_shape(
    size_zyx: Sequence[int], spacing_zyx: Sequence[float], config: PreprocessingConfig
) -> tuple[int, ...]:
    """The ``(X, Y, Z)`` shape the image has after resampling to the model's spacing (before cropping: an upper bound).

    Raises:
        InputError: a spacing that is not 3 positive finite numbers, or an image that resamples to 0 voxels.
    """
    if len(spacing_zyx) != 3 or any(not (math.isfinite(float(s)) and float(s) > 0) for s in spacing_zyx):
        raise InputError(f"expected 3 positive finite spacings in mm (z, y, x), got {tuple(spacing_zyx)!r}")
    forward = config.transpose_forward
    shape_t = tuple(int(size_zyx[a]) for a in forward)
    spacing_t = tuple(float(spacing_zyx[a]) for a in forward)
    target = tuple(config.spacing) if len(config.spacing) == 3 else (spacing_t[0], *config.spacing)
    shape = tuple(int(s) for s in compute_new_shape(shape_t, spacing_t, target))
    if min(shape) < 1:
        raise InputError(
            f"expected an image at least one voxel wide at the model's {'x'.join(f'{v:g}' for v in target)} mm "
            f"spacing, but {'x'.join(str(v) for v in shape_t)} voxels at {'x'.join(f'{v:g}' for v in spacing_t)} mm "
            f"resample to {'x'.join(str(v) for v in shape)}; the header's spacing is implausible"
        )
    return shape


def estimate_run_bytes(
    size_zyx: Sequence[int],
    spacing_zyx: Sequence[float],
    config: PreprocessingConfig,
    *,
    num_classes: int,
    patch_size: Sequence[int],
    batch_size: int = 1,
) -> RunEstimate:
    """The peak memory of segmenting an image of ``size_zyx`` voxels at ``spacing_zyx`` mm, from sizes only.

    Example: a 300 x 512 x 512 CT at 0.8 x 0.7 x 0.7 mm for a 1.5 mm, 14-class model with a 128^3 patch needs about
    0.3 GB (input) + 0.4 GB (resampled) + 6.5 GB (logit and weight sums) + 0.5 GB (activations).
    """
    shape = resampled_shape(size_zyx, spacing_zyx, config)
    voxels_in = math.prod(int(s) for s in size_zyx)
    voxels = math.prod(shape)
    channels = config.num_channels
    patch = math.prod(int(p) for p in patch_size)
    return RunEstimate(
        resampled_shape=shape,
        image=4 * channels * voxels_in,
        resampled=4 * channels * voxels,
        logits=4 * (num_classes + 1) * voxels,
        activations=4 * ACTIVATION_FACTOR * patch * max(int(batch_size), 1),
    )


def max_run_bytes() -> int:
    """The largest estimated peak of one run: ``GASA_MAX_RUN_BYTES``, else 3/4 of the machine's memory (8 GB unknown).

    Raises:
        InputError: the environment variable is not a byte size.
    """
    text = os.environ.get(MAX_RUN_BYTES_ENV, "").strip()
    if text:
        try:
            return parse_byte_size(text)
        except ValueError as err:
            raise InputError(
                f"{MAX_RUN_BYTES_ENV} must be a byte size such as 16GB or 2000000000, got {text!r}"
            ) from err
    total = physical_memory_bytes()
    return total * 3 // 4 if total else _FALLBACK_LIMIT


def check_run_memory(
    size_zyx: Sequence[int],
    spacing_zyx: Sequence[float],
    config: PreprocessingConfig,
    *,
    num_classes: int,
    patch_size: Sequence[int],
    batch_size: int = 1,
    limit: int | None = None,
    source: object = "the image",
) -> RunEstimate:
    """The run's estimate, refused above ``limit`` (default :func:`max_run_bytes`) before anything is resampled.

    Raises:
        ImageTooLargeError: naming the estimate, its parts and the limit.
        InputError: a bad spacing or a bad ``GASA_MAX_RUN_BYTES``.
    """
    estimate = estimate_run_bytes(
        size_zyx, spacing_zyx, config, num_classes=num_classes, patch_size=patch_size, batch_size=batch_size
    )
    bound = max_run_bytes() if limit is None else limit
    if estimate.total > bound:
        size = "x".join(str(int(v)) for v in size_zyx)
        spacing = "x".join(f"{float(v):g}" for v in spacing_zyx)
        target = "x".join(f"{float(v):g}" for v in config.spacing)
        resampled = "x".join(str(v) for v in estimate.resampled_shape)
        raise ImageTooLargeError(
            f"expected a run of at most {format_bytes(bound)} (the memory limit), but {source} ({size} voxels at "
            f"{spacing} mm, z x y x x) resampled to the model's {target} mm spacing is {resampled} voxels and needs "
            f"about "
            f"{format_bytes(estimate.total)} (logits {format_bytes(estimate.logits)} for {num_classes} classes); "
            f"check the image's spacing or set {MAX_RUN_BYTES_ENV} to raise the limit"
        )
    return estimate
