"""Exact instance normalisation of channels-last 5D CPU tensors, out of place or in place.

PyTorch's own instance norm converts a channels-last input to contiguous and back (two copies), and its
channels-last batch/group-norm kernels sum squares in float32 in one pass, which loses 1e-2 on windows of a
million voxels. Here the mean is a (cascade) sum and the variance that of the centred values, computed one
block of depth slices at a time (two passes, no cancellation): within ~2e-6 of a float64 reference on
128x112x128 windows, with temporaries of at most :data:`_VARIANCE_BLOCK` elements besides the result.
"""

from __future__ import annotations

import torch

__all__ = ["instance_norm_channels_last", "instance_norm_channels_last_"]

#: Elements of one temporary block of the variance pass (1 MB: reused from the heap, not mapped anew).
_VARIANCE_BLOCK = 1 << 18


def _instance_statistics(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per ``(N, C)`` mean and ``1 / sqrt(variance + eps)`` of ``x``, shaped ``(N, C, 1, 1, 1)``.

    The mean by a (cascade) sum, then the variance of the centred values one block of depth slices at a time
    (two passes, no cancellation; each block's temporary holds at most :data:`_VARIANCE_BLOCK` elements).
    """
    spatial = x.shape[2] * x.shape[3] * x.shape[4]
    mean = x.sum(dim=(2, 3, 4), keepdim=True).div_(spatial)
    variance = torch.zeros((x.shape[0], x.shape[1], 1, 1, 1), dtype=x.dtype)
    step = max(1, _VARIANCE_BLOCK // max(1, x.shape[0] * x.shape[1] * x.shape[3] * x.shape[4]))
    for start in range(0, x.shape[2], step):
        block = x[:, :, start : start + step] - mean
        variance += block.mul_(block).sum(dim=(2, 3, 4), keepdim=True)
    return mean, variance.div_(spatial).add_(eps).rsqrt_()


def instance_norm_channels_last_(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """:func:`instance_norm_channels_last` in place: ``x`` (any layout) is overwritten and returned.

    For tensors nobody else holds, such as a convolution's fresh output: it saves the second full-size tensor.
    """
    mean, scale = _instance_statistics(x, eps)
    if weight is not None:
        scale = scale * weight.view(1, -1, 1, 1, 1)
    x.sub_(mean).mul_(scale)
    return x if bias is None else x.add_(bias.view(1, -1, 1, 1, 1))


def instance_norm_channels_last(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """``F.instance_norm`` (batch statistics, no running stats) of a channels-last ``(N, C, D, H, W)`` tensor.

    PyTorch's own instance norm converts a channels-last input to contiguous and back (two copies), and its
    channels-last batch/group-norm kernels sum squares in float32 in one pass, which loses 1e-2 on windows of
    a million voxels. Here: the mean by a (cascade) sum, then the variance of the centred values in blocks
    (two passes, no cancellation): within ~2e-6 of a float64 reference on 128x112x128 windows. The result is
    channels-last; ``x`` is not modified.

    Example: for ``x = torch.randn(1, 16, 64, 64, 64).contiguous(memory_format=torch.channels_last_3d)``,
    ``instance_norm_channels_last(x, None, None, 1e-5)`` equals ``F.instance_norm(x, eps=1e-5)`` to ~1e-6.
    """
    mean, scale = _instance_statistics(x, eps)
    if weight is not None:
        scale = scale * weight.view(1, -1, 1, 1, 1)
    centred = (x - mean).mul_(scale)
    return centred if bias is None else centred.add_(bias.view(1, -1, 1, 1, 1))
