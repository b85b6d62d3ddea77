"""V-Net and UNETR from MONAI, with or without the GASA block at the end of their encoders (the paper's Table 1).

MONAI is a dependency of ``gasa-train`` only, never of the Slicer runtime: it is imported when a network is
built, and a missing MONAI raises an ``ImportError`` that says ``pip install monai``. The networks keep MONAI's
published defaults (the paper "preserved the default configurations"):

* **V-Net** (Milletari et al. 2016; ``monai.networks.nets.VNet``): 16-channel input transition, four
  down-transitions (stride 2, 32 / 64 / 128 / 256 channels, dropout 0.5 in the last two), four up-transitions
  (dropout 0.5 in the first two), ELU, BatchNorm. Bottleneck: 256 channels at ``patch / 16``; with GASA the
  first up-transition's transposed convolution takes ``256 + 3 n`` channels.
* **UNETR** (Hatamizadeh et al. 2022; ``monai.networks.nets.UNETR``): a 12-layer ViT on 16^3 patches (hidden
  768, MLP 3072, 12 heads), skips from ViT layers 3, 6 and 9, feature size 16, instance norm, residual blocks.
  Bottleneck: the last ViT layer as a ``768 x patch / 16`` grid; with GASA the first decoder block's transposed
  convolution takes ``768 + 3 n`` channels. ``unetr_*`` options shrink it (for tests, small GPUs).

The patch size must be a multiple of 16 on every axis. See :mod:`GASACore.network.backbones` for the shared
constructor interface and what ``deep_supervision`` does here.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import torch
from torch import nn

from GASACore.network.backbones import Backbone, SkipDecoder, WithGASA
from GASACore.network.topology import Topology

__all__ = ["GASAUNETR", "UNETR", "GASAVNet", "VNet"]


def _monai_nets() -> ModuleType:
    try:
        import monai.networks.nets as nets
    except ImportError as err:
        raise ImportError(
            "the V-Net and UNETR backbones need MONAI, a dependency of gasa-train only: pip install monai"
        ) from err
    return nets


class _VNetEncoder(nn.Module):
    """MONAI V-Net's input and down transitions; returns every transition's output (5 levels)."""

    def __init__(self, vnet: nn.Module) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            [vnet.in_tr, vnet.down_tr32, vnet.down_tr64, vnet.down_tr128, vnet.down_tr256]  # type: ignore[list-item]
        )
        self.output_channels = [16, 32, 64, 128, 256]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


class VNet(Backbone):
    """MONAI's V-Net with a fixed input size (see the module docstring)."""

    encoder_strides = Topology.MONAI_VNET.fixed.strides

    def _build(self, input_channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
        if 16 % input_channels:
            raise ValueError(f"V-Net needs input_channels dividing 16 (1, 2, 4, 8 or 16), got {input_channels}")
        vnet = _monai_nets().VNet(spatial_dims=3, in_channels=input_channels, out_channels=num_classes)
        decoder = SkipDecoder(
            [vnet.up_tr256, vnet.up_tr128, vnet.up_tr64, vnet.up_tr32], vnet.out_tr, first_input="up_conv"
        )
        return _VNetEncoder(vnet), decoder


class GASAVNet(WithGASA, VNet):
    """V-Net + the GASA block at the end of the encoder (``gasa_*`` options as GASA-UNet)."""


class _UNETREncoder(nn.Module):
    """UNETR's ViT and encoder blocks; returns ``[enc1, enc2, enc3, enc4, last ViT layer as a grid]``."""

    def __init__(self, unetr: nn.Module, grid: Sequence[int], hidden_size: int, feature_size: int) -> None:
        super().__init__()
        self.vit = unetr.vit
        self.blocks = nn.ModuleList([unetr.encoder1, unetr.encoder2, unetr.encoder3, unetr.encoder4])  # type: ignore[list-item]
        self.grid = tuple(grid)
        self.output_channels = [feature_size, 2 * feature_size, 4 * feature_size, 8 * feature_size, hidden_size]

    def _as_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """ViT tokens ``(N, X*Y*Z, hidden)`` -> ``(N, hidden, X, Y, Z)`` on the 16^3-patch grid."""
        return tokens.reshape(tokens.shape[0], *self.grid, tokens.shape[-1]).permute(0, 4, 1, 2, 3).contiguous()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        tokens, hidden = self.vit(x)
        skips = [self.blocks[0](x)]
        skips += [block(self._as_grid(hidden[layer])) for block, layer in zip(self.blocks[1:], (3, 6, 9), strict=True)]
        return [*skips, self._as_grid(tokens)]


class UNETR(Backbone):
    """MONAI's UNETR with a fixed input size (see the module docstring).

    Extra keyword arguments: ``unetr_feature_size`` (16), ``unetr_hidden_size`` (768), ``unetr_mlp_dim`` (3072),
    ``unetr_num_heads`` (12).
    """

    encoder_strides = Topology.MONAI_UNETR.fixed.strides

    def __init__(
        self,
        *,
        unetr_feature_size: int = 16,
        unetr_hidden_size: int = 768,
        unetr_mlp_dim: int = 3072,
        unetr_num_heads: int = 12,
        **kwargs: Any,
    ) -> None:
        self._unetr_options = {
            "feature_size": unetr_feature_size,
            "hidden_size": unetr_hidden_size,
            "mlp_dim": unetr_mlp_dim,
            "num_heads": unetr_num_heads,
        }
        super().__init__(**kwargs)

    def _build(self, input_channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
        options = self._unetr_options
        if options["hidden_size"] % options["num_heads"]:
            raise ValueError(f"unetr_hidden_size must be a multiple of unetr_num_heads, got {options}")
        unetr = _monai_nets().UNETR(
            in_channels=input_channels, out_channels=num_classes, img_size=self.patch_size, **options
        )
        encoder = _UNETREncoder(unetr, self.bottleneck_size, options["hidden_size"], options["feature_size"])
        decoder = SkipDecoder(
            [unetr.decoder5, unetr.decoder4, unetr.decoder3, unetr.decoder2], unetr.out, first_input="transp_conv.conv"
        )
        return encoder, decoder


class GASAUNETR(WithGASA, UNETR):
    """UNETR + the GASA block on the last ViT layer's grid (``gasa_*`` options as GASA-UNet)."""
