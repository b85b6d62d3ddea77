"""The Global Axial Self-Attention (GASA) block of GASA-UNet.

Specification: ``design/gasa-block.md``. The block turns every whole axial, coronal and sagittal
plane of the bottleneck into one token, lets all ``X + Y + Z`` tokens attend to each other, spreads
the result back over the planes and concatenates it to the input.

Layout: input ``(N, C, X, Y, Z)``, output ``(N, C + 3 * dim, X, Y, Z)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from GASACore.network.block_options import GASABlockOptions, PositionalEmbedding

__all__ = ["GASABlock", "PositionalEmbedding", "check_spatial_size"]  # PositionalEmbedding lives in block_options


def check_spatial_size(x: torch.Tensor, expected: tuple[int, ...], what: str) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(N, C, *expected)``.

    Args:
        x: a 5D tensor ``(N, C, X, Y, Z)``.
        expected: the spatial size ``(X, Y, Z)`` the module was built for.
        what: the module's name for the message.
    """
    if x.dim() != 2 + len(expected) or tuple(x.shape[2:]) != tuple(expected):
        raise ValueError(
            f"{what} was built for inputs of spatial size {tuple(expected)} (N, C, X, Y, Z), "
            f"got a tensor of shape {tuple(x.shape)}"
        )


class GASABlock(nn.Module):
    """Global Axial Self-Attention on a fixed-size 3D feature map.

    Args:
        channels: input channels ``C`` (320 at the paper's bottleneck).
        spatial_size: input size ``(X, Y, Z)`` in voxels; the block only accepts this size.
        dim, heads, positional_embedding, qkv_norm, dropout: the block's options, validated and defaulted
            by ``GASABlockOptions`` (token dimension 25, 5 heads dividing it, ``"voxels"`` embedding, no qkv
            LayerNorm, dropout 0.5 on the GASA feature in training).

    Raises:
        ValueError: non-positive sizes or channels, or invalid options (see ``GASABlockOptions``).
    """

    def __init__(
        self,
        *,
        channels: int,
        spatial_size: tuple[int, int, int],
        dim: int = GASABlockOptions.dim,
        heads: int = GASABlockOptions.heads,
        positional_embedding: PositionalEmbedding | str = GASABlockOptions.positional_embedding,
        qkv_norm: bool = GASABlockOptions.qkv_norm,
        dropout: float = GASABlockOptions.dropout,
    ) -> None:
        super().__init__()
        size = tuple(int(s) for s in spatial_size)
        if len(size) != 3 or any(s < 1 for s in size):
            raise ValueError(f"spatial_size must be 3 sizes of at least 1 voxel (X, Y, Z), got {spatial_size!r}")
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels=}")
        options = GASABlockOptions(dim, heads, positional_embedding, qkv_norm, dropout)  # validates
        dim, heads, mode = options.dim, options.heads, options.positional_embedding
        sx, sy, sz = size
        self.spatial_size: tuple[int, int, int] = (sx, sy, sz)
        self.channels = channels
        self.dim = dim
        self.heads = heads
        self.positional_embedding = mode
        # One token per whole plane: the kernel covers the plane, so the output has one value per slice.
        self.project_x = nn.Conv3d(channels, dim, kernel_size=(1, sy, sz))
        self.project_y = nn.Conv3d(channels, dim, kernel_size=(sx, 1, sz))
        self.project_z = nn.Conv3d(channels, dim, kernel_size=(sx, sy, 1))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.qkv_norm = nn.LayerNorm(3 * dim) if qkv_norm else None
        self.proj = nn.Linear(dim, dim)
        self.token_embedding = (
            nn.Parameter(torch.zeros(1, sx + sy + sz, dim)) if mode is PositionalEmbedding.TOKENS else None
        )
        self.voxel_embedding = (
            nn.Parameter(torch.zeros(1, 1, sx, sy, sz)) if mode is PositionalEmbedding.VOXELS else None
        )
        self.dropout = nn.Dropout(options.dropout)

    @property
    def out_channels(self) -> int:
        """Channels of the output: ``C + 3 * dim``."""
        return self.channels + 3 * self.dim

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Plane tokens ``(N, X + Y + Z, dim)`` of ``x`` ``(N, C, X, Y, Z)``: X-planes, then Y, then Z.

        Each projection is its full-plane ``Conv3d``, computed as one matrix product over all planes
        (identical result; oneDNN's direct convolution is ~10x slower for kernels this large on CPU).
        """
        n = x.shape[0]
        planes = (
            (x.permute(0, 2, 1, 3, 4), self.project_x),  # (N, X, C, Y, Z)
            (x.permute(0, 3, 1, 2, 4), self.project_y),  # (N, Y, C, X, Z)
            (x.permute(0, 4, 1, 2, 3), self.project_z),  # (N, Z, C, X, Y)
        )
        return torch.cat(
            [
                F.linear(p.reshape(n, p.shape[1], -1), conv.weight.reshape(self.dim, -1), conv.bias)
                for p, conv in planes
            ],
            dim=1,
        )

    def attend(self, tokens: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention without MLP or residual: ``(N, T, dim) -> (N, T, dim)``."""
        n, t, _ = tokens.shape
        qkv = self.qkv(tokens)
        if self.qkv_norm is not None:
            qkv = self.qkv_norm(qkv)
        head_dim = self.dim // self.heads
        q, k, v = qkv.reshape(n, t, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)  # each (N, heads, T, d)
        attended = F.scaled_dot_product_attention(q, k, v)  # softmax(QK^T / sqrt(d)) V
        return self.proj(attended.transpose(1, 2).reshape(n, t, self.dim))

    def expand(self, tokens: torch.Tensor) -> torch.Tensor:
        """Broadcast tokens ``(N, X+Y+Z, dim)`` back over their planes: the feature ``(N, 3*dim, X, Y, Z)``."""
        n = tokens.shape[0]
        sx, sy, sz = self.spatial_size
        tx, ty, tz = tokens.transpose(1, 2).split((sx, sy, sz), dim=2)  # (N, dim, X), (N, dim, Y), (N, dim, Z)
        full = (n, self.dim, sx, sy, sz)
        return torch.cat(
            (
                tx.reshape(n, self.dim, sx, 1, 1).expand(full),
                ty.reshape(n, self.dim, 1, sy, 1).expand(full),
                tz.reshape(n, self.dim, 1, 1, sz).expand(full),
            ),
            dim=1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, X, Y, Z) -> (N, C + 3 * dim, X, Y, Z)``; raises ``ValueError`` for any other size."""
        check_spatial_size(x, self.spatial_size, "GASABlock")
        if x.shape[1] != self.channels:
            raise ValueError(f"GASABlock expects {self.channels} input channels, got {x.shape[1]}")
        tokens = self.tokens(x)
        if self.token_embedding is not None:
            tokens = tokens + self.token_embedding
        feature = self.expand(self.attend(tokens))
        if self.voxel_embedding is not None:
            feature = feature + self.voxel_embedding
        return torch.cat((x, self.dropout(feature)), dim=1)
