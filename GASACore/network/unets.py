"""U-Nets of dynamic-network-architectures with a fixed input size, with or without the GASA block.

The classes keep the backbone's state-dict keys identical to dynamic-network-architectures', so a
nnU-Net v2 checkpoint of the plain network loads unchanged. The GASA variants add ``gasa.*`` keys and
widen only the first decoder transposed convolution to ``C + 3 * dim`` inputs.

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
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from torch import nn

from GASACore.network.block_options import GASABlockOptions
from GASACore.network.gasa_block import GASABlock, check_spatial_size
from GASACore.network.plans import bottleneck_size

__all__ = ["FixedPatchPlainConvUNet", "FixedPatchResidualEncoderUNet", "GASAPlainConvUNet", "GASAResidualEncoderUNet"]


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
        self.decoder.transpconvs[0] = type(first)(
            self.gasa.out_channels,
            first.out_channels,
            first.kernel_size,
            first.stride,
            bias=self.encoder.conv_bias,
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
