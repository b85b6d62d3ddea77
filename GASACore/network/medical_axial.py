"""The medical axial transformer ("MAT"): MedT's gated position-sensitive axial attention (Valanarasu et al. 2021)
carried to 3D (Liu and Kiryu 2024), the third attention baseline of the paper's Tables 1-2 and 4.

A gated axial attention along one axis of length ``L`` (per head of ``d = C / heads`` channels)::

    q, k, v = split(BN(W_qkv x))                       # d/2, d/2 and d channels per head
    logits  = q^T k + g_q * q^T r_q + g_k * k^T r_k     # r_*: learned relative position embeddings
    a       = softmax(sum of BN(each of the three terms))
    y       = BN(g_v1 * a v  and  g_v2 * a r_v), the two summed

with the relative embeddings ``r_q, r_k, r_v`` read from one table of ``2 d x (2 L - 1)`` values by offset
``i - j`` (initialised with variance ``1 / d``), gates ``g_q = g_k = g_v2 = 0.1`` and ``g_v1 = 1`` at start
(MedT's initialisation). The block wraps
three of them (X, then Y, then Z) in MedT's residual form: ``1x1x1`` conv + BN + ReLU, the three attentions,
ReLU, ``1x1x1`` conv + BN, ``+ x``, ReLU.

One table length ``L`` serves all three axes, as in the 3D extension the paper compares with, so the block only
takes cubic inputs ``L x L x L``: the paper left MAT out on AMOS because it "cannot process asymmetric 3D
features"; here an asymmetric bottleneck is refused with a ``ValueError``.

Parameters at the paper's bottleneck (C = 320, 6 x 6 x 6): 849,310 with ``heads=1`` (nnU-Net v1 + MAT =
30.3534 Mi, Table 4's 30.35); the MedT network's ``heads=8`` gives 830,956 (30.34). The block keeps width ``C``
(MedT's ResNet-style block halves it, which would give 0.25 Mi). The paper gives neither, so the defaults are
the ones Table 4 implies: ``heads=1``, width ``C``.

MACs (thop's rules, :mod:`GASACore.network.complexity`) at that plan: 0.181 G for the block, 0.133 G of it the
qkv projections, so nnU-Net v1 + MAT counts 663.05 G where Table 4 says 662.9 G. The difference fits thop skipping
exactly those projections in MedT's code, whose ``qkv_transform`` subclasses ``nn.Conv1d`` (thop looks its rules
up by exact type): 662.874 + 0.048 = 662.92 G. Ours are plain ``nn.Conv1d`` and counted.

Layout: ``(N, C, L, L, L) -> (N, C, L, L, L)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GatedAxialAttention", "MedicalAxialBlock3d"]


class GatedAxialAttention(nn.Module):
    """MedT's gated position-sensitive axial attention along one axis of a 5D feature map.

    Args:
        channels: Input (= output) channels ``C``.
        length: Size ``L`` of the axis (the relative embeddings cover offsets ``-(L-1) .. L-1``).
        axis: 0, 1 or 2 for X, Y or Z of ``(N, C, X, Y, Z)``.
        heads: Heads; ``C / heads`` must be even.
    """

    def __init__(self, *, channels: int, length: int, axis: int, heads: int = 1) -> None:
        super().__init__()
        if heads < 1 or channels % heads or (channels // heads) % 2:
            raise ValueError(f"channels / heads must be a positive even integer, got channels={channels}, {heads=}")
        if axis not in (0, 1, 2) or length < 1:
            raise ValueError(f"axis must be 0, 1 or 2 and length positive, got axis={axis!r}, length={length!r}")
        self.channels, self.length, self.axis, self.heads = channels, length, axis, heads
        self.head_channels = channels // heads
        self.qkv = nn.Conv1d(channels, 2 * channels, kernel_size=1, bias=False)
        self.qkv_norm = nn.BatchNorm1d(2 * channels)
        self.logit_norm = nn.BatchNorm2d(3 * heads)
        self.output_norm = nn.BatchNorm1d(2 * channels)
        # variance 1 / d as MedT's normal(0, d^-1/2); uniform because random normals are slow on the meta device
        bound = (3.0 / self.head_channels) ** 0.5
        self.relative = nn.Parameter(
            nn.init.uniform_(torch.empty(2 * self.head_channels, 2 * length - 1), -bound, bound)
        )
        self.gate_q = nn.Parameter(torch.tensor(0.1))
        self.gate_k = nn.Parameter(torch.tensor(0.1))
        self.gate_v1 = nn.Parameter(torch.tensor(1.0))
        self.gate_v2 = nn.Parameter(torch.tensor(0.1))
        # (L, L) table index of the offset i - j; built from a list (torch.arange is slow on the meta device)
        offsets = torch.tensor([[i - j + length - 1 for j in range(length)] for i in range(length)])
        self.register_buffer("offsets", offsets, persistent=False)

    def _embeddings(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        table = self.relative[:, self.offsets]  # (2d, L, L)
        half = self.head_channels // 2
        return table[:half], table[half : 2 * half], table[2 * half :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, X, Y, Z) -> (N, C, X, Y, Z)``, attending along ``axis``."""
        spatial = 2 + self.axis
        if x.dim() != 5 or x.shape[1] != self.channels or x.shape[spatial] != self.length:
            raise ValueError(
                f"GatedAxialAttention expects (N, {self.channels}, X, Y, Z) with size {self.length} on axis "
                f"{self.axis}, got a tensor of shape {tuple(x.shape)}"
            )
        others = [d for d in (2, 3, 4) if d != spatial]
        lines = x.permute(0, *others, 1, spatial)  # (N, A, B, C, L)
        shape = lines.shape
        lines = lines.reshape(-1, self.channels, self.length)  # (M, C, L)
        m, d, half = lines.shape[0], self.head_channels, self.head_channels // 2
        qkv = self.qkv_norm(self.qkv(lines)).reshape(m, self.heads, 2 * d, self.length)
        q, k, v = qkv[:, :, :half], qkv[:, :, half : 2 * half], qkv[:, :, 2 * half :]
        r_q, r_k, r_v = self._embeddings()
        content = torch.einsum("bhci,bhcj->bhij", q, k)
        query_position = torch.einsum("bhci,cij->bhij", q, r_q) * self.gate_q
        key_position = torch.einsum("bhcj,cji->bhij", k, r_k) * self.gate_k
        logits = self.logit_norm(torch.cat((content, query_position, key_position), dim=1))
        weights = logits.reshape(m, 3, self.heads, self.length, self.length).sum(dim=1).softmax(dim=-1)
        values = torch.einsum("bhij,bhcj->bhci", weights, v) * self.gate_v1
        positions = torch.einsum("bhij,cij->bhci", weights, r_v) * self.gate_v2
        stacked = torch.stack((values, positions), dim=3).reshape(m, 2 * self.channels, self.length)
        out = self.output_norm(stacked).reshape(m, self.channels, 2, self.length).sum(dim=2)  # (M, C, L)
        inverse = [0] * 5
        for position, dim in enumerate((0, *others, 1, spatial)):
            inverse[dim] = position
        return out.reshape(shape).permute(*inverse)


class MedicalAxialBlock3d(nn.Module):
    """MAT block: MedT's gated axial block along X, Y and Z of a cubic feature map (see the module docstring).

    Args:
        channels: Input (= output) channels ``C``.
        spatial_size: ``(L, L, L)``; the block accepts only this size.
        heads: Heads of each axial attention (default 1).

    Raises:
        ValueError: An asymmetric ``spatial_size`` (MAT cannot take it) or bad sizes.
    """

    def __init__(self, *, channels: int, spatial_size: tuple[int, int, int], heads: int = 1) -> None:
        super().__init__()
        size = tuple(int(s) for s in spatial_size)
        if len(size) != 3 or any(s < 1 for s in size):
            raise ValueError(f"spatial_size must be 3 positive sizes (X, Y, Z), got {spatial_size!r}")
        if len(set(size)) != 1:
            raise ValueError(
                f"MAT (medical axial transformer) shares one relative-position table across the three axes and "
                f"needs a cubic feature map L x L x L; got the asymmetric bottleneck {size} (the paper leaves MAT out "
                "on AMOS for this reason). Choose a plan whose bottleneck is cubic, or another attention block"
            )
        self.channels, self.spatial_size = channels, size
        self.down = nn.Conv3d(channels, channels, kernel_size=1, bias=False)
        self.down_norm = nn.BatchNorm3d(channels)
        self.attentions = nn.ModuleList(
            GatedAxialAttention(channels=channels, length=size[0], axis=axis, heads=heads) for axis in range(3)
        )
        self.up = nn.Conv3d(channels, channels, kernel_size=1, bias=False)
        self.up_norm = nn.BatchNorm3d(channels)
        self.relu = nn.ReLU(inplace=True)

    @property
    def out_channels(self) -> int:
        """Channels of the output: ``C``."""
        return self.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, L, L, L) -> (N, C, L, L, L)``."""
        if x.dim() != 5 or tuple(x.shape[1:]) != (self.channels, *self.spatial_size):
            raise ValueError(
                f"MedicalAxialBlock3d was built for (N, {self.channels}, {', '.join(map(str, self.spatial_size))}), "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        out = self.relu(self.down_norm(self.down(x)))
        for attention in self.attentions:
            out = attention(out)
        out = self.up_norm(self.up(self.relu(out)))
        return self.relu(out + x)
