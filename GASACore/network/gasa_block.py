"""The Global Axial Self-Attention (GASA) block of GASA-UNet.

Specification: ``design/gasa-block.md``. The block turns every whole axial, coronal and sagittal
plane of the bottleneck into one token, lets all ``X + Y + Z`` tokens attend to each other, spreads
the result back over the planes and concatenates it to the input.

Layout: input ``(N, C, X, Y, Z)``, output ``(N, C + 3 * dim, X, Y, Z)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GASABlock", "PositionalEmbedding", "bottleneck_size", "check_spatial_size"]


class PositionalEmbedding(str, Enum):
    """Where the learnable positional embedding is added."""

    NONE = "none"  #: no embedding (the paper's "NoPE")
    TOKENS = "tokens"  #: ``(1, X+Y+Z, dim)`` added to the tokens (the paper's "BPE")
    VOXELS = "voxels"  #: ``(1, 1, X, Y, Z)`` added to the GASA feature (the paper's "APE", default)


def bottleneck_size(patch_size: Sequence[int], strides: Sequence[Sequence[int] | int]) -> tuple[int, int, int]:
    """Spatial size ``(X, Y, Z)`` of a bottleneck block's input: ``patch_size`` / product of the encoder strides.

    Example: the paper's BTCV plan, ``(48, 192, 192)`` with strides ``1, (1,2,2), (1,2,2), 2, 2, 2`` -> ``(6, 6, 6)``.

    Raises:
        ValueError: Not 3 sizes, or a size not a positive multiple of the total stride on its axis.
    """
    total = [1, 1, 1]
    for stride in strides:
        triple = (stride,) * 3 if isinstance(stride, int) else tuple(int(v) for v in stride)
        total = [t * v for t, v in zip(total, triple, strict=True)]
    patch = tuple(int(p) for p in patch_size)
    if len(patch) != 3 or any(p % t or p // t < 1 for p, t in zip(patch, total, strict=True)):
        raise ValueError(
            f"patch_size must be 3 positive multiples of the total stride {tuple(total)} (a bottleneck of at "
            f"least 1 voxel), got {tuple(patch_size)}"
        )
    return tuple(p // t for p, t in zip(patch, total, strict=True))  # type: ignore[return-value]


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
        dim: token dimension ``n`` (default 25).
        heads: attention heads; ``dim % heads == 0`` (default 5).
        positional_embedding: ``"none"``, ``"tokens"`` or ``"voxels"`` (default).
        qkv_norm: LayerNorm over the qkv projection's output (off by default, as in the paper).
        dropout: dropout probability on the GASA feature during training (default 0.5).

    Raises:
        ValueError: non-positive sizes, ``dim % heads != 0``, an unknown embedding mode or a
            dropout outside [0, 1).
    """

    def __init__(
        self,
        *,
        channels: int,
        spatial_size: tuple[int, int, int],
        dim: int = 25,
        heads: int = 5,
        positional_embedding: PositionalEmbedding | str = PositionalEmbedding.VOXELS,
        qkv_norm: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        size = tuple(int(s) for s in spatial_size)
        if len(size) != 3 or any(s < 1 for s in size):
            raise ValueError(f"spatial_size must be 3 sizes of at least 1 voxel (X, Y, Z), got {spatial_size!r}")
        if channels < 1 or dim < 1 or heads < 1:
            raise ValueError(f"channels, dim and heads must be positive, got {channels=}, {dim=}, {heads=}")
        if dim % heads != 0:
            raise ValueError(f"dim must be divisible by heads, got dim={dim} and heads={heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        try:
            mode = PositionalEmbedding(positional_embedding)
        except ValueError as err:
            choices = [m.value for m in PositionalEmbedding]
            raise ValueError(f"positional_embedding must be one of {choices}, got {positional_embedding!r}") from err

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
        self.dropout = nn.Dropout(dropout)

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
