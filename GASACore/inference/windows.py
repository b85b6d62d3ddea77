"""Window arithmetic of the sliding window: window starts, Gaussian importance, padding, mirrors.

Every helper here follows nnU-Net v2's rules exactly (``nnunetv2.inference.sliding_window_prediction``
and ``acvl_utils.cropping_and_padding.padding.pad_nd_image``) so that GASASegmenter reproduces its
predictions. Images are ``(C, X, Y, Z)`` tensors in nnU-Net's transposed array order; sizes are in voxels.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from GASACore.errors import InputError

__all__ = [
    "DEFAULT_MAX_WINDOWS",
    "MAX_WINDOWS_ENV",
    "Slicer",
    "check_window_count",
    "gaussian_importance",
    "max_windows",
    "mirror_combinations",
    "pad_to_patch",
    "window_count",
    "window_slicers",
    "window_starts",
    "window_within",
]

#: Index of one window (or of the un-padding) in a ``(C, X, Y, Z)`` tensor: ``(slice(None), sx, sy, sz)``.
Slicer = tuple[slice, ...]

#: Environment variable that sets the most sliding windows one image may need.
MAX_WINDOWS_ENV = "GASA_MAX_WINDOWS"
#: Default bound: a 512x512x1000 CT with a 128^3 patch and step 0.5 needs 7x7x15 = 735 windows.
DEFAULT_MAX_WINDOWS = 100_000


def _positive_sizes(values: Sequence[int], what: str) -> tuple[int, ...]:
    sizes = tuple(int(v) for v in values)
    if not sizes or any(v <= 0 for v in sizes) or any(int(v) != v for v in values):
        raise ValueError(f"{what} must be positive integers, got {tuple(values)!r}")
    return sizes


def _axis_counts(image: Sequence[int], patch: Sequence[int], step_size: float) -> list[int]:
    """Windows per axis by nnU-Net's rule, ``ceil((n - p) / (p * step)) + 1``, without listing them."""
    return [math.ceil((n - p) / (p * step_size)) + 1 for n, p in zip(image, patch, strict=True)]


def window_count(image_size: Sequence[int], patch_size: Sequence[int], step_size: float) -> int:
    """Number of windows :func:`window_slicers` gives, computed arithmetically (nothing is listed).

    Axes smaller than the patch count one window (they are padded to the patch first).
    Example: ``window_count((110, 64, 64), (64, 64, 64), 0.5)`` is 3.

    Raises:
        ValueError: non-positive sizes, mismatched lengths or a step outside ``(0, 1]``.
    """
    image = _positive_sizes(image_size, "image_size")
    patch = _positive_sizes(patch_size, "patch_size")
    if len(image) != len(patch):
        raise ValueError(f"image_size and patch_size must have the same length, got {image} and {patch}")
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and 0 < step_size <= 1):
        raise ValueError(f"step_size must be in (0, 1], got {step_size!r}")
    padded = [max(n, p) for n, p in zip(image, patch, strict=True)]
    return math.prod(_axis_counts(padded, patch, step_size))


def max_windows() -> int:
    """The most windows one image may need: ``GASA_MAX_WINDOWS`` when set, else :data:`DEFAULT_MAX_WINDOWS`.

    Raises:
        InputError: the environment variable is not a positive integer.
    """
    text = os.environ.get(MAX_WINDOWS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_WINDOWS
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{MAX_WINDOWS_ENV} must be a positive integer such as 100000, got {text!r}")
    return int(text)


def check_window_count(
    image_size: Sequence[int], patch_size: Sequence[int], step_size: float, *, limit: int | None = None
) -> int:
    """The window count of an image, refused above ``limit`` (default :func:`max_windows`) before any is listed.

    Raises:
        InputError: ``expected at most L sliding windows, but an image of X x Y x Z voxels with patch ... and
            step S needs N``, naming how to raise the limit.
        ValueError: as :func:`window_count`.
    """
    count = window_count(image_size, patch_size, step_size)
    bound = max_windows() if limit is None else limit
    if count > bound:
        shape = "x".join(str(int(v)) for v in image_size)
        patch = "x".join(str(int(v)) for v in patch_size)
        raise InputError(
            f"expected at most {bound} sliding windows, but an image of {shape} voxels with patch {patch} and step "
            f"{step_size!r} needs {count} windows: use a larger --step-size (0.5 is nnU-Net's) or set "
            f"{MAX_WINDOWS_ENV} to raise the limit"
        )
    return count


def window_starts(image_size: Sequence[int], patch_size: Sequence[int], step_size: float) -> list[list[int]]:
    """Start voxel of every window along each axis, by nnU-Net v2's rule.

    Along an axis of ``n`` voxels with a patch of ``p`` voxels there are
    ``ceil((n - p) / (p * step_size)) + 1`` windows, spread evenly from ``0`` to ``n - p`` and rounded
    half to even (numpy's ``round``); a single window starts at 0. Example: ``n=110, p=64, step=0.5``
    gives ``[0, 23, 46]``.

    Args:
        image_size: spatial size ``(X, Y, Z)`` of the (padded) image, in voxels.
        patch_size: window size, one entry per axis of ``image_size``, in voxels.
        step_size: largest step as a fraction of the patch size, ``0 < step_size <= 1`` (0.5 = 50% overlap).

    Returns:
        One list of start indices per axis.

    Raises:
        ValueError: mismatched lengths, non-positive sizes, an image smaller than the patch on some axis
            (pad it with :func:`pad_to_patch` first) or a step outside ``(0, 1]``.
        InputError: more windows than :func:`max_windows` (counted before any is listed).
    """
    image = _positive_sizes(image_size, "image_size")
    patch = _positive_sizes(patch_size, "patch_size")
    if len(image) != len(patch):
        raise ValueError(f"image_size and patch_size must have the same length, got {image} and {patch}")
    if any(i < p for i, p in zip(image, patch, strict=True)):
        raise ValueError(f"image_size must be at least patch_size {patch} on every axis (pad first), got {image}")
    if not 0 < step_size <= 1:
        raise ValueError(f"step_size must be in (0, 1], got {step_size!r}")
    check_window_count(image, patch, step_size)
    starts = []
    for size, tile, num_steps in zip(image, patch, _axis_counts(image, patch, step_size), strict=True):
        actual_step = (size - tile) / (num_steps - 1) if num_steps > 1 else 0.0
        # round() rounds half to even like np.round, which nnU-Net uses.
        starts.append([round(actual_step * i) for i in range(num_steps)])
    return starts


def window_slicers(image_size: Sequence[int], patch_size: Sequence[int], step_size: float) -> list[Slicer]:
    """Slicers of all windows of a ``(C, X, Y, Z)`` image, in nnU-Net's order (X outermost, Z innermost).

    Args:
        image_size: spatial size ``(X, Y, Z)`` of the (padded) image, in voxels.
        patch_size: window size ``(X, Y, Z)`` in voxels.
        step_size: see :func:`window_starts`.

    Returns:
        ``(slice(None), slice(sx, sx + px), slice(sy, sy + py), slice(sz, sz + pz))`` per window.
    """
    starts = window_starts(image_size, patch_size, step_size)
    patch = tuple(int(p) for p in patch_size)
    return [
        (slice(None), *(slice(s, s + p) for s, p in zip(combo, patch, strict=True)))
        for combo in itertools.product(*starts)
    ]


def window_within(window: Slicer, region: Slicer) -> Slicer | None:
    """The part of ``window`` that lies inside ``region`` (both index the same padded tensor), or ``None``.

    Used to look only at image voxels of a window that reaches into the zero padding of
    :func:`pad_to_patch` (``region`` is the un-padding slicer it returns): padding is not image, so it
    must not decide whether a window holds anything but air.

    Example: a window ``(:, 0:64, 0:64, 0:64)`` over an image padded from 40 to 64 voxels along X
    (``region`` ``(:, 12:52, :, :)``) is looked at in ``(:, 12:52, 0:64, 0:64)``; a window entirely in the
    padding gives ``None``.

    Args:
        window: ``(slice(None), sx, sy, sz)`` with explicit starts and stops (as :func:`window_slicers` gives).
        region: ``(slice(None), rx, ry, rz)``; a ``slice(None)`` axis means the whole axis.
    """
    clipped: list[slice] = [window[0]]
    for inner, outer in zip(window[1:], region[1:], strict=True):
        low = max(inner.start or 0, outer.start or 0)
        high = inner.stop if outer.stop is None else min(inner.stop, outer.stop)
        if high <= low:
            return None
        clipped.append(slice(low, high))
    return tuple(clipped)


def gaussian_importance(
    patch_size: Sequence[int],
    sigma_scale: float = 1.0 / 8,
    value_scaling_factor: float = 10.0,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Gaussian importance map of one window, as nnU-Net v2 computes it.

    nnU-Net filters a unit impulse at voxel ``patch // 2`` with a Gaussian of sigma ``patch * sigma_scale``
    (scipy's ``gaussian_filter``: kernel truncated at ``int(4 * sigma + 0.5)`` voxels, zero outside),
    scales the map so its maximum is ``value_scaling_factor``, casts it to ``dtype`` and replaces zeros
    (underflow, e.g. in float16) by the smallest non-zero value so that no voxel gets zero weight. The
    filtered impulse is the product of the normalised 1D kernels; it is computed here in float64 without scipy.

    Args:
        patch_size: window size ``(X, Y, Z)`` in voxels.
        sigma_scale: sigma as a fraction of the patch size per axis (nnU-Net: 1/8).
        value_scaling_factor: value at the centre (nnU-Net's predictor: 10).
        device: device of the returned tensor.
        dtype: dtype of the returned tensor (the zero replacement happens in this dtype).

    Returns:
        Tensor of shape ``patch_size``, dimensionless weights in ``(0, value_scaling_factor]``.

    Raises:
        ValueError: non-positive patch sizes, sigma_scale or value_scaling_factor.
    """
    patch = _positive_sizes(patch_size, "patch_size")
    if not sigma_scale > 0 or not value_scaling_factor > 0:
        raise ValueError(
            f"sigma_scale and value_scaling_factor must be > 0, got {sigma_scale!r} and {value_scaling_factor!r}"
        )
    result = torch.ones((), dtype=torch.float64)
    for size in patch:
        sigma = size * sigma_scale
        radius = int(4.0 * sigma + 0.5)
        offsets = torch.arange(size, dtype=torch.float64) - size // 2
        kernel = torch.exp(-0.5 / (sigma * sigma) * offsets**2)
        total = torch.exp(-0.5 / (sigma * sigma) * torch.arange(-radius, radius + 1, dtype=torch.float64) ** 2).sum()
        kernel = torch.where(offsets.abs() <= radius, kernel / total, torch.zeros_like(kernel))
        result = result.unsqueeze(-1) * kernel
    result = result / (result.max() / value_scaling_factor)
    result = result.to(device=device, dtype=dtype)
    zero = result == 0
    if zero.any():
        result[zero] = result[~zero].min()
    return result


def pad_to_patch(image: torch.Tensor, patch_size: Sequence[int]) -> tuple[torch.Tensor, Slicer]:
    """Pad a ``(C, X, Y, Z)`` image with zeros to at least the patch size, as nnU-Net does.

    Only axes smaller than the patch are padded, symmetrically, the extra voxel of an odd amount going
    after the image (``pad_nd_image(..., 'constant', {'value': 0})``). Larger axes are never cropped.

    Args:
        image: ``(C, X, Y, Z)`` tensor (any dtype).
        patch_size: window size ``(X, Y, Z)`` in voxels.

    Returns:
        ``(padded, slicer)`` with ``padded[slicer]`` equal to ``image``; ``slicer`` also un-pads logits
        ``(K, X, Y, Z)``. ``padded`` is ``image`` itself when no padding is needed.

    Raises:
        ValueError: ``image`` is not 4D or ``patch_size`` has not 3 positive entries.
    """
    patch = _positive_sizes(patch_size, "patch_size")
    if image.dim() != 4 or len(patch) != 3:
        raise ValueError(
            f"pad_to_patch expects a (C, X, Y, Z) image and a 3-entry patch size, "
            f"got shape {tuple(image.shape)} and patch {patch}"
        )
    spatial = tuple(image.shape[1:])
    below = [max(p - s, 0) // 2 for s, p in zip(spatial, patch, strict=True)]
    above = [max(p - s, 0) - b for s, p, b in zip(spatial, patch, below, strict=True)]
    slicer: Slicer = (slice(None), *(slice(b, b + s) for b, s in zip(below, spatial, strict=True)))
    if not any(below) and not any(above):
        return image, slicer
    # F.pad takes (low, high) pairs starting from the last axis.
    pads = [amount for axis in reversed(range(3)) for amount in (below[axis], above[axis])]
    return F.pad(image, pads, mode="constant", value=0.0), slicer


def mirror_combinations(mirror_axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Non-empty combinations of the mirror axes in nnU-Net's order, as axes of a ``(B, C, X, Y, Z)`` batch.

    Args:
        mirror_axes: spatial axes 0 (X), 1 (Y), 2 (Z) to mirror; empty for no test-time augmentation.

    Returns:
        E.g. ``(0, 1)`` gives ``[(2,), (3,), (2, 3)]``; prediction = (plain + flipped ones) / (len + 1).
    """
    batch_axes = [int(a) + 2 for a in mirror_axes]
    return [combo for r in range(1, len(batch_axes) + 1) for combo in itertools.combinations(batch_axes, r)]
