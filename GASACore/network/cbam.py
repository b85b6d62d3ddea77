"""CBAM (Woo et al. 2018) in 3D: the channel + spatial attention baseline of the paper's Tables 1-2 and 4.

Channel attention: a shared two-layer MLP (``C -> C / r -> C``, ReLU, with bias) on the average- and the
max-pooled feature, summed, sigmoid, multiplied onto the channels. Spatial attention: the channel-wise mean and
max ``(N, 2, X, Y, Z)``, a ``k x k x k`` convolution to one map (no bias) with a BatchNorm, sigmoid, multiplied
onto the voxels. Same channels in and out, any spatial size.

Parameters: ``2 C (C / r) + C / r + C`` (MLP) ``+ 2 k^3 + 2`` (spatial). The paper does not give ``r``; the CBAM
paper's default is 16. At the paper's bottleneck (C = 320) ``r = 8`` gives 26,648 parameters and nnU-Net v1 +
CBAM = 29.5688 Mi, Table 4's 29.57; ``r = 16`` would give 13,828 and 29.56. So the default here is 8.

Layout: ``(N, C, X, Y, Z) -> (N, C, X, Y, Z)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CBAM3d"]


class CBAM3d(nn.Module):
    """Convolutional Block Attention Module for 3D feature maps.

    Args:
        channels: Input (= output) channels ``C``.
        reduction: MLP reduction ratio ``r``; ``C // r`` hidden units (default 8, see the module docstring).
        spatial_kernel: Odd size ``k`` of the spatial-attention convolution (default 7, as CBAM).

    Raises:
        ValueError: Non-positive sizes, ``C // r < 1`` or an even kernel.
    """

    def __init__(self, *, channels: int, reduction: int = 8, spatial_kernel: int = 7) -> None:
        super().__init__()
        if channels < 1 or reduction < 1 or channels // reduction < 1:
            raise ValueError(
                f"channels and reduction must be positive with channels // reduction >= 1, "
                f"got channels={channels}, reduction={reduction}"
            )
        if spatial_kernel < 1 or spatial_kernel % 2 == 0:
            raise ValueError(f"spatial_kernel must be a positive odd size, got {spatial_kernel!r}")
        self.channels = channels
        hidden = channels // reduction
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.spatial = nn.Conv3d(2, 1, spatial_kernel, padding=spatial_kernel // 2, bias=False)
        self.spatial_norm = nn.BatchNorm3d(1)

    @property
    def out_channels(self) -> int:
        """Channels of the output: ``C``."""
        return self.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, X, Y, Z) -> (N, C, X, Y, Z)``: channel attention, then spatial attention."""
        if x.dim() != 5 or x.shape[1] != self.channels:
            raise ValueError(f"CBAM3d expects (N, {self.channels}, X, Y, Z), got a tensor of shape {tuple(x.shape)}")
        flat = x.flatten(2)
        channel = torch.sigmoid(self.mlp(flat.mean(dim=2)) + self.mlp(flat.amax(dim=2)))  # (N, C)
        x = x * channel[:, :, None, None, None]
        pooled = torch.cat((x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)), dim=1)  # (N, 2, X, Y, Z)
        return x * torch.sigmoid(self.spatial_norm(self.spatial(pooled)))
