"""Conventional axial self-attention ("AT", the paper's Fig. 1a): three separate attentions along X, then Y, then Z.

Each step lets every line of voxels along one axis attend within itself (Ho et al. 2019; Wang et al. 2020): for
axis X the ``Y * Z`` lines of length ``X`` are sequences of ``C``-dim tokens, split into ``heads`` heads,
``softmax(Q K^T / sqrt(C / heads)) V``, and the result is added back with a learnable gate
``x + gamma * attention(x)`` (``gamma`` zero-initialised, so training starts from the plain U-Net). The three
steps run in sequence, which is the "linear structure" the paper contrasts GASA with.

Projections. With ``projections=True`` every step has its own ``Q, K, V`` and output maps (``Linear(C, 3C)`` and
``Linear(C, C)``, with bias): ``3 (4 C^2 + 4 C) + 3`` parameters, 1,232,643 at C = 320 (+1.18 Mi). The paper's
Table 4 lists nnU-Net + AT at 29.54 Mi, the same as nnU-Net to two decimals, i.e. fewer than ~1,700 added
parameters, and the same FLOPs (662.9 G): no learned ``C x C`` maps fit that. So the default is
``projections=False``: ``Q = K = V =`` the features themselves, 3 parameters (the gates) and no MAC that thop
counts (the attention products are functional ops), which reproduces both Table 4 entries.

Layout: ``(N, C, X, Y, Z) -> (N, C, X, Y, Z)``; any spatial size (asymmetric bottlenecks included).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AxialSelfAttention3d"]


class _AxialStep(nn.Module):
    """Multi-head self-attention along one axis of ``(N, C, X, Y, Z)``, gated residual."""

    def __init__(self, channels: int, heads: int, axis: int, projections: bool) -> None:
        super().__init__()
        self.channels, self.heads, self.axis = channels, heads, axis
        self.qkv = nn.Linear(channels, 3 * channels) if projections else None
        self.proj = nn.Linear(channels, channels) if projections else None
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = 2 + self.axis
        others = [d for d in (2, 3, 4) if d != spatial]
        lines = x.permute(0, *others, spatial, 1)  # (N, A, B, L, C): one sequence per line along the axis
        shape = lines.shape
        tokens = lines.reshape(-1, shape[3], self.channels)  # (N*A*B, L, C)
        if self.qkv is not None:
            q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        else:
            q = k = v = tokens
        split = (tokens.shape[0], tokens.shape[1], self.heads, self.channels // self.heads)
        q, k, v = (t.reshape(split).transpose(1, 2) for t in (q, k, v))  # (N*A*B, heads, L, C / heads)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(tokens.shape)
        if self.proj is not None:
            attended = self.proj(attended)
        inverse = [0] * 5  # undo the permutation
        for position, dim in enumerate((0, *others, spatial, 1)):
            inverse[dim] = position
        return x + self.gamma * attended.reshape(shape).permute(*inverse)


class AxialSelfAttention3d(nn.Module):
    """Axial self-attention along X, then Y, then Z (see the module docstring).

    Args:
        channels: Input (= output) channels ``C``.
        heads: Attention heads; ``C % heads == 0`` (default 8).
        projections: Learned Q/K/V and output maps per axis (default False, the Table-4-consistent variant).

    Raises:
        ValueError: Non-positive sizes or ``C % heads != 0``.
    """

    def __init__(self, *, channels: int, heads: int = 8, projections: bool = False) -> None:
        super().__init__()
        if channels < 1 or heads < 1 or channels % heads:
            raise ValueError(f"channels must be a positive multiple of heads, got channels={channels}, heads={heads}")
        self.channels = channels
        self.steps = nn.ModuleList(_AxialStep(channels, heads, axis, projections) for axis in range(3))

    @property
    def out_channels(self) -> int:
        """Channels of the output: ``C``."""
        return self.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, X, Y, Z) -> (N, C, X, Y, Z)``."""
        if x.dim() != 5 or x.shape[1] != self.channels:
            raise ValueError(
                f"AxialSelfAttention3d expects (N, {self.channels}, X, Y, Z), got a tensor of shape {tuple(x.shape)}"
            )
        for step in self.steps:
            x = step(x)
        return x
