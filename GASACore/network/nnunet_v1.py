"""nnU-Net **v1**'s ``Generic_UNet`` topology, the network the paper's Table 4 counted, with or without GASA.

The paper's counts (29.54 Mi parameters, 662.9 G MACs for nnU-Net; 30.55 Mi and 663.2 G with GASA) come from
the authors' nnU-Net v1 code. Built from the same plan, v1's ``Generic_UNet`` differs from v2's
``PlainConvUNet`` (which our trained networks use) in three ways, all reproduced here:

* decoder stage kernels are shifted by one stage: the decoder stage at the resolution of encoder stage ``s``
  uses the kernel of stage ``s + 1`` (v2: of stage ``s``). At the paper's BTCV plan the decoder stage at stage
  1's resolution has 3x3x3 instead of 1x3x3 convolutions: +221,184 parameters and +97.8 G MACs;
* transposed convolutions have no bias (-800 parameters at that plan);
* segmentation heads have no bias (-70), and every head runs in every forward pass, also without deep
  supervision (v1 returns only the full-resolution one then).

So v1 = v2 + 220,314 = 30,978,528 parameters at the paper's plan (= 29.54 Mi). These classes exist to make the
paper's numbers checkable (:mod:`GASACore.network.complexity`); train and ship the v2 networks.

Same keyword arguments as :class:`~GASACore.network.unets.FixedPatchPlainConvUNet` /
:class:`~GASACore.network.unets.GASAPlainConvUNet`.
"""

from __future__ import annotations

from typing import Any

import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from dynamic_network_architectures.building_blocks.simple_conv_blocks import StackedConvBlocks
from torch import nn

from GASACore.network.gasa_block import check_spatial_size
from GASACore.network.unets import BottleneckTransposedConv, FixedPatchPlainConvUNet, GASAPlainConvUNet

__all__ = ["GASAPlainConvUNetV1", "PlainConvUNetV1"]


def _without_bias(conv: nn.modules.conv._ConvNd) -> nn.modules.conv._ConvNd:
    """The same (transposed) convolution without a bias term."""
    split = {"backbone_channels": conv.backbone_channels} if isinstance(conv, BottleneckTransposedConv) else {}
    return type(conv)(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False, **split
    )


def _to_v1(network: PlainConvUNet) -> None:
    """Rebuild decoder stages with v1's shifted kernels, transposed convolutions and heads without bias."""
    encoder, decoder = network.encoder, network.decoder
    for s in range(len(decoder.stages)):
        skip_channels = encoder.output_channels[-(s + 2)]
        decoder.stages[s] = StackedConvBlocks(
            len(decoder.stages[s].convs),
            encoder.conv_op,
            2 * skip_channels,
            skip_channels,
            encoder.kernel_sizes[-(s + 1)],  # v2: kernel_sizes[-(s + 2)], the skip's own stage
            1,
            encoder.conv_bias,
            encoder.norm_op,
            encoder.norm_op_kwargs,
            encoder.dropout_op,
            encoder.dropout_op_kwargs,
            encoder.nonlin,
            encoder.nonlin_kwargs,
        )
    for modules in (decoder.transpconvs, decoder.seg_layers):
        for i, conv in enumerate(modules):
            modules[i] = _without_bias(conv)


class _V1:
    """Turns a (GASA) fixed-patch PlainConvUNet into v1's topology after it is built; v1's forward."""

    patch_size: tuple[int, int, int]
    encoder: nn.Module
    decoder: nn.Module

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _to_v1(self)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        check_spatial_size(x, self.patch_size, type(self).__name__)
        skips = list(self.encoder(x))
        lower = self._bottleneck(skips[-1])  # type: ignore[attr-defined]  # the fixed-patch U-Net's
        outputs = []
        for s, stage in enumerate(self.decoder.stages):
            lower = stage(torch.cat((self.decoder.transpconvs[s](lower), skips[-(s + 2)]), dim=1))
            outputs.append(self.decoder.seg_layers[s](lower))
        outputs.reverse()
        return outputs if self.decoder.deep_supervision else outputs[0]


class PlainConvUNetV1(_V1, FixedPatchPlainConvUNet):
    """nnU-Net v1's ``Generic_UNet`` for a plan, built from v2's blocks (see the module docstring).

    ``forward`` runs every segmentation head, as v1 does, and returns the full-resolution logits
    ``(N, K, X, Y, Z)``, or with deep supervision all of them, full resolution first.
    """


class GASAPlainConvUNetV1(_V1, GASAPlainConvUNet):
    """:class:`PlainConvUNetV1` + the GASA block; the widened first transposed convolution has no bias, as v1's."""
