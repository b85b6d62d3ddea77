"""U-Nets of dynamic-network-architectures with a fixed input size, with or without the GASA block.

The classes keep the backbone's state-dict keys identical to dynamic-network-architectures', so a
nnU-Net v2 checkpoint of the plain network loads unchanged. The GASA variants add ``gasa.*`` keys and
widen only the first decoder transposed convolution to ``C + 3 * dim`` inputs
(:class:`BottleneckTransposedConv`: the same weight, computed as the backbone's ``C`` channels plus the GASA
feature's ``3 * dim``, so a GASA network started from a plain one with zero GASA weights gives its logits bit
for bit).

They take the same keyword arguments as dynamic-network-architectures' classes plus ``patch_size``
and the ``gasa_*`` options, so nnU-Net v2 can build them from a plans file
(``network_class_name: "GASACore.network.unets.GASAPlainConvUNet"``).

Layout: input ``(N, C_in, X, Y, Z)`` of exactly ``patch_size``; output logits ``(N, K, X, Y, Z)``, or with
deep supervision a list of logits at decreasing resolution, full resolution first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from torch import nn

from GASACore.network.block_options import GASABlockOptions
from GASACore.network.gasa_block import GASABlock, check_spatial_size
from GASACore.network.plans import bottleneck_size

__all__ = [
    "BottleneckTransposedConv",
    "FixedPatchPlainConvUNet",
    "FixedPatchResidualEncoderUNet",
    "GASAPlainConvUNet",
    "GASAResidualEncoderUNet",
]


class BottleneckTransposedConv(nn.ConvTranspose3d):
    """The first decoder transposed convolution of a GASA U-Net: input ``concat(x, G)``, ``C + 3 * dim`` channels.

    One weight ``(C + 3 * dim, C_out, *kernel)`` and bias, as a plain ``ConvTranspose3d`` over all inputs (same
    parameters and state-dict keys), computed as two sums: the backbone features ``x`` (the first
    ``backbone_channels``) with ``weight[:C]`` plus the bias, then the GASA feature with ``weight[C:]``. The
    result is the same up to float rounding; the first term is exactly the plain U-Net's transposed convolution,
    so with ``weight[C:] == 0`` (a GASA network initialised from a plain one) the output equals the plain
    network's bit for bit, which one convolution over all channels does not give (its summation order differs).

    Args:
        backbone_channels: ``C``, the bottleneck channels of the encoder; the other input channels are GASA's.
        *args, **kwargs: ``nn.ConvTranspose3d``'s (``in_channels`` is ``C + 3 * dim``).

    Layout: ``(N, C + 3 * dim, X, Y, Z) -> (N, C_out, X * sx, Y * sy, Z * sz)``.
    """

    def __init__(self, *args: Any, backbone_channels: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 0 < backbone_channels < self.in_channels or self.groups != 1:
            raise ValueError(
                f"backbone_channels must be in 1..{self.in_channels - 1} (ungrouped), got {backbone_channels}"
            )
        self.backbone_channels = int(backbone_channels)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None:
            raise ValueError("BottleneckTransposedConv takes no output_size (the U-Net's strides fix it)")
        c = self.backbone_channels
        common = (self.stride, self.padding, self.output_padding, 1, self.dilation)
        backbone = F.conv_transpose3d(x[:, :c], self.weight[:c], self.bias, *common)
        return backbone + F.conv_transpose3d(x[:, c:], self.weight[c:], None, *common)


class _FixedPatchMixin:
    """Forward that checks the input size and runs an optional block on the bottleneck."""

    patch_size: tuple[int, int, int]
    encoder: nn.Module
    decoder: nn.Module

    def __init__(self, *args: Any, patch_size: Sequence[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.patch_size = tuple(int(p) for p in patch_size)  # type: ignore[assignment]
        bottleneck_size(self.patch_size, self.encoder.strides)  # validates the patch for this encoder

    def _bottleneck(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        check_spatial_size(x, self.patch_size, type(self).__name__)
        skips = list(self.encoder(x))
        skips[-1] = self._bottleneck(skips[-1])
        return self.decoder(skips)


class _GASAMixin(_FixedPatchMixin):
    """Adds the GASA block after the encoder and widens the first decoder transposed convolution."""

    gasa: GASABlock

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = GASABlockOptions.pop_network_kwargs(kwargs)  # gasa_dim, gasa_heads, ... (defaults when absent)
        super().__init__(*args, **kwargs)
        self.gasa = GASABlock(
            channels=self.encoder.output_channels[-1],
            spatial_size=bottleneck_size(self.patch_size, self.encoder.strides),
            **options.to_json(),
        )
        first = self.decoder.transpconvs[0]
        self.decoder.transpconvs[0] = BottleneckTransposedConv(
            self.gasa.out_channels,
            first.out_channels,
            first.kernel_size,
            first.stride,
            bias=self.encoder.conv_bias,
            backbone_channels=self.gasa.channels,
        )

    def _bottleneck(self, features: torch.Tensor) -> torch.Tensor:
        return self.gasa(features)


class FixedPatchPlainConvUNet(_FixedPatchMixin, PlainConvUNet):
    """nnU-Net v2's ``PlainConvUNet`` that accepts exactly ``patch_size`` inputs (same state dict)."""


class FixedPatchResidualEncoderUNet(_FixedPatchMixin, ResidualEncoderUNet):
    """nnU-Net v2's ``ResidualEncoderUNet`` that accepts exactly ``patch_size`` inputs (same state dict)."""


class GASAPlainConvUNet(_GASAMixin, PlainConvUNet):
    """GASA-UNet: ``PlainConvUNet`` + the GASA block after the last encoder stage.

    Keyword arguments: dynamic-network-architectures' ``PlainConvUNet`` ones, plus ``patch_size`` and the
    ``GASABlockOptions`` keywords ``gasa_dim``, ``gasa_heads``, ``gasa_pe``, ``gasa_qkv_norm``, ``gasa_dropout``
    (the paper's defaults when absent).
    """


class GASAResidualEncoderUNet(_GASAMixin, ResidualEncoderUNet):
    """GASA-L: ``ResidualEncoderUNet`` + the GASA block after the last encoder stage (same extra kwargs)."""
