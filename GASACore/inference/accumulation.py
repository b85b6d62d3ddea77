"""How window predictions are summed into whole-image logits: float32 sums divided at the end, or pre-normalised
float16 sums (half the memory).

Float32 (nnU-Net's way, in float32): ``sums[window] += logits * gaussian`` for every window, then one pass
``sums / weight_sums``. Pre-normalised float16: the weight sums depend only on where the windows are, so they
are computed before the loop and every window adds its *share*, ``logits * gaussian / weight_sums[window]``;
each voxel's shares sum to its final logit, no value falls outside float16's range and no division pass (and
its full-size temporaries) is left. nnU-Net's float16 accumulation on the CPU instead sums ``logits *
gaussian``, which underflows where the Gaussian is small (3.8e-10 of its peak at window corners): voxels only
window corners cover get logits off by up to 10. Measured (``bench/window_memory_bench.py``, 300x300x168 case,
14 classes): 176 MB less for the sums, argmax agreement with float32 sums 99.9985% (demo model, sample CT) and
99.9955% (the DICOM CT); ``Testing/GASACore/inference/test_accumulation.py`` asserts >= 99.99% on real CT.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from GASACore.enums import StrEnum
from GASACore.inference.windows import Slicer

__all__ = [
    "BACKGROUND_LOGIT",
    "LogitSums",
    "add_window",
    "background_logits",
    "fill_uncovered",
    "half_sums",
    "prenormalised_weights",
    "sums_dtype",
]

#: Magnitude of the logits that mark a voxel as background: softmax gives class 0 a probability of
#: 1 - 2e-9 per other class; a sigmoid gives every region 4.5e-5, far below the decoder's 0.5.
BACKGROUND_LOGIT = 10.0


class LogitSums(StrEnum):
    """Precision of the whole-image logit sums."""

    AUTO = "auto"  #: float16 pre-normalised where the sums live on the CPU, float32 on a GPU
    FP16 = "fp16"  #: pre-normalised float16 sums (half the memory of float32)
    FP32 = "fp32"  #: float32 sums divided by the weight sums at the end


def half_sums(mode: LogitSums | str, target: torch.device) -> bool:
    """Whether the sums on ``target`` are pre-normalised float16.

    Examples: ``half_sums("auto", torch.device("cpu"))`` is ``True``; ``half_sums("auto", torch.device("cuda"))``
    is ``False`` (GPU sums stay float32); ``half_sums("fp32", torch.device("cpu"))`` is ``False``.
    """
    chosen = LogitSums(mode)
    return chosen is LogitSums.FP16 or (chosen is LogitSums.AUTO and target.type == "cpu")


def sums_dtype(half: bool) -> torch.dtype:
    """``torch.float16`` for pre-normalised sums, else ``torch.float32``."""
    return torch.float16 if half else torch.float32


def prenormalised_weights(weight_sums: torch.Tensor, n_folds: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The divisor of each window's share, in place: ``weight_sums * n_folds`` with uncovered voxels set to 1.

    Example: two windows overlapping on one voxel with weight 1 each and 2 folds: the sums ``[1, 2, 1]``
    become ``[2, 4, 2]``; each window's share there is ``logit / 4`` per fold, which the 4 contributions add
    back to the mean logit.

    Args:
        weight_sums: ``(X, Y, Z)`` float32 sum of every predicted window's weights (Gaussian or 1); modified.
        n_folds: folds that each add every window once.

    Returns:
        The divisor (``weight_sums`` itself) and the mask of voxels no window covers (``None`` when there
        are none); those voxels get :func:`background_logits` after the loop.
    """
    uncovered = weight_sums == 0
    mask = uncovered if bool(uncovered.any()) else None
    if n_folds > 1:
        weight_sums *= n_folds
    if mask is not None:
        weight_sums[mask] = 1.0
    return weight_sums, mask


def add_window(
    sums: torch.Tensor,
    slicer: Slicer,
    window_logits: torch.Tensor,
    gaussian: torch.Tensor | None,
    divisor: torch.Tensor | None,
) -> None:
    """Add one window's ``(K, X, Y, Z)`` logits into the whole-image ``sums`` at ``slicer``.

    ``divisor`` ``None``: ``sums[slicer] += logits * gaussian`` (divided by the weight sums later). Else the
    pre-normalised share ``logits * gaussian / divisor[window]`` (``window_logits`` is scaled in place: it must
    be a fresh prediction nobody else holds). Added one class channel at a time: the same sums, with
    temporaries of one channel (a float16 ``+=`` of a float32 window converts it whole: twice its size).
    """
    target = sums[slicer]
    if divisor is None:
        for channel, logits in zip(target, window_logits, strict=True):  # one channel's temporary at a time
            channel += logits if gaussian is None else logits * gaussian
        return
    share = divisor[slicer[1:]].reciprocal()
    if gaussian is not None:
        share.mul_(gaussian)
    for channel, logits in zip(target, window_logits, strict=True):  # a float16 += float32 sum converts the
        channel += logits.mul_(share)  # whole right side at once: per channel that is 1/K of the memory


def background_logits(num_classes: int, *, regions: bool) -> tuple[float, ...]:
    """The logits that every decoder of the model's output type reads as background, one per channel.

    Softmax models (``regions=False``): class 0 high, every other class low, so the argmax is 0. Region-based
    models (``regions=True``, sigmoid per region, nnU-Net's ``regions_class_order``): every region strongly
    negative, so no region's sigmoid passes 0.5 and the label is 0.

    Examples:
        >>> background_logits(3, regions=False), background_logits(3, regions=True)
        ((10.0, -10.0, -10.0), (-10.0, -10.0, -10.0))

    Raises:
        ValueError: ``num_classes`` below 1.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    first = -BACKGROUND_LOGIT if regions else BACKGROUND_LOGIT
    return (first,) + (-BACKGROUND_LOGIT,) * (num_classes - 1)


def fill_uncovered(sums: torch.Tensor, uncovered: torch.Tensor | None, values: Sequence[float]) -> None:
    """Give the voxels no window covered the logit ``values[k]`` in channel ``k``."""
    if uncovered is None:
        return
    for channel, value in enumerate(values):
        sums[channel][uncovered] = value
