"""A lean CPU forward pass of nnU-Net's U-Nets: the same modules in the same order, less memory held.

The U-Nets of dynamic-network-architectures keep every encoder output (the skips) until the decoder has
finished, keep each decoder stage's concatenated input while both of its convolutions run, and normalise each
convolution's output into a second tensor. On a 48x128x128 window of an 8-channel network that is ~190 MB
held at the last decoder stage (``bench/window_forward_bench.py``). :func:`lean_unet_forward` runs the same
network so that each skip is released once the decoder has concatenated it, each concatenation once the first
convolution has read it, and the instance norm and LeakyReLU of every ``ConvDropoutNormReLU`` work in place on
the convolution's output, which nothing else holds. The arithmetic is the network's own (same modules, same
weights; the norm is :func:`~GASACore.inference.cpu_runtime.instance_norm_channels_last`'s), so the logits equal
``network(x)``'s to float32 rounding.

Only networks whose forward passes it knows are run this way: ``PlainConvUNet`` / ``ResidualEncoderUNet`` and
GASACore's fixed-patch and GASA variants of them (their own encoder, bottleneck block and decoder modules are
called as they are); :func:`lean_unet_forward` returns ``None`` for anything else, which then runs as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from dynamic_network_architectures.building_blocks.plain_conv_encoder import PlainConvEncoder
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU, StackedConvBlocks
from dynamic_network_architectures.building_blocks.unet_decoder import UNetDecoder
from torch import nn

from GASACore.inference.instance_norm import instance_norm_channels_last_
from GASACore.network.gasa_block import check_spatial_size
from GASACore.network.unets import FixedPatchPlainConvUNet

__all__ = ["lean_unet_forward"]

logger = logging.getLogger(__name__)

#: GASACore's fixed-patch forward (input-size check, optional bottleneck block), shared by its U-Net classes.
_FIXED_PATCH_FORWARD = FixedPatchPlainConvUNet.forward
#: Network forwards whose structure (encoder -> [bottleneck block] -> decoder) the lean pass reproduces.
_KNOWN_FORWARDS = (PlainConvUNet.forward, ResidualEncoderUNet.forward, _FIXED_PATCH_FORWARD)


#: Activation dtypes normalised in place here: float32, and bfloat16 of the ``onednn-bf16`` backend.
_NORM_DTYPES = (torch.float32, torch.bfloat16)


def _is_in_place_norm(module: nn.Module) -> bool:
    """An ``InstanceNorm3d`` that normalises by the input's own statistics (no running statistics)."""
    return isinstance(module, nn.InstanceNorm3d) and not module.track_running_stats


def _block(block: ConvDropoutNormReLU, x: torch.Tensor) -> torch.Tensor:
    """``block(x)``, with the norm and nonlinearity applied in place to the convolution's fresh output."""
    return _after_conv(block, block.all_modules[0](x))


def _after_conv(block: ConvDropoutNormReLU, y: torch.Tensor) -> torch.Tensor:
    """The modules of ``block`` after its convolution, applied to its output ``y`` (in place where they can)."""
    for module in list(block.all_modules)[1:]:
        if _is_in_place_norm(module) and y.dtype in _NORM_DTYPES and y.device.type == "cpu" and y.dim() == 5:
            y = instance_norm_channels_last_(y, module.weight, module.bias, float(module.eps))
        elif isinstance(module, nn.LeakyReLU):
            y = F.leaky_relu(y, module.negative_slope, inplace=True)
        else:
            y = module(y)
    return y


def _stacked(stage: nn.Module, box: list[torch.Tensor]) -> torch.Tensor:
    """Run ``stage`` on the tensor in ``box`` (taken out, so that it is freed once the first module has read it)."""
    x = box.pop()
    modules = stage.convs if isinstance(stage, StackedConvBlocks) else [stage]
    for module in modules:
        x = _block(module, x) if isinstance(module, ConvDropoutNormReLU) else module(x)
    return x


def _splittable(stage: nn.Module) -> bool:
    """A decoder stage whose first convolution can read ``cat(up, skip)`` as two convolutions summed."""
    if not isinstance(stage, StackedConvBlocks) or not isinstance(stage.convs[0], ConvDropoutNormReLU):
        return False
    conv = stage.convs[0].conv
    return type(conv) is nn.Conv3d and conv.groups == 1 and isinstance(conv.padding, tuple)


def _first_on_pair(stage: StackedConvBlocks, box: list[torch.Tensor]) -> torch.Tensor:
    """``stage(cat(up, skip))`` without the concatenation: ``conv(up, W[:, :C]) + conv(skip, W[:, C:])``.

    A convolution is linear in its input channels, so this is the same sum in another order (float32
    rounding); each input is released once read, so at most two inputs and the output are held.
    """
    first, conv = stage.convs[0], stage.convs[0].conv
    up, skip = box.pop(0), box.pop()
    split = up.shape[1]
    geometry = (conv.stride, conv.padding, conv.dilation)
    y = F.conv3d(up, conv.weight[:, :split], conv.bias, *geometry)
    del up
    y += F.conv3d(skip, conv.weight[:, split:], None, *geometry)
    del skip
    y = _after_conv(first, y)
    for module in list(stage.convs)[1:]:
        y = _block(module, y) if isinstance(module, ConvDropoutNormReLU) else module(y)
    return y


def _encode(encoder: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    if type(encoder).forward is not PlainConvEncoder.forward or not encoder.return_skips:
        return list(encoder(x))  # e.g. the residual encoder: its own forward, skips as it returns them
    skips = []
    for stage in encoder.stages:
        parts = stage if isinstance(stage, nn.Sequential) else [stage]
        for part in parts:
            x = _stacked(part, [x])
        skips.append(x)
    return skips


def _decode(decoder: UNetDecoder, skips: list[torch.Tensor]) -> Any:
    """``UNetDecoder.forward(skips)``, releasing each skip and concatenation once used (empties ``skips``)."""
    lres = skips.pop()
    seg_outputs = []
    last = len(decoder.stages) - 1
    for s, stage in enumerate(decoder.stages):
        pair = [decoder.transpconvs[s](lres), skips.pop()]
        del lres
        if _splittable(stage):
            x = _first_on_pair(stage, pair)
        else:
            joined = [torch.cat(pair, 1)]
            pair.clear()
            x = _stacked(stage, joined)
        if decoder.deep_supervision:
            seg_outputs.append(decoder.seg_layers[s](x))
        elif s == last:
            seg_outputs.append(decoder.seg_layers[-1](x))
        lres = x
    del lres
    seg_outputs = seg_outputs[::-1]
    return seg_outputs if decoder.deep_supervision else seg_outputs[0]


def lean_unet_forward(network: nn.Module) -> Callable[[torch.Tensor], Any] | None:
    """A forward pass of ``network`` that holds less memory, or ``None`` when ``network`` is not a known U-Net.

    Example::

        forward = lean_unet_forward(network) or network
        with torch.inference_mode(), OneDNNConvolutions():
            logits = forward(window)     # network(window) to float32 rounding, ~half the peak memory

    Known: ``type(network).forward`` is ``PlainConvUNet``'s, ``ResidualEncoderUNet``'s or GASACore's fixed-patch
    forward (with its input-size check and bottleneck block), and the decoder is a ``UNetDecoder``. Use it
    without autograd (in-place norms): under ``torch.inference_mode()`` or ``torch.no_grad()``.
    """
    if type(network).forward not in _KNOWN_FORWARDS or type(network.decoder).forward is not UNetDecoder.forward:
        return None
    fixed = type(network).forward is _FIXED_PATCH_FORWARD

    def forward(x: torch.Tensor) -> Any:
        if torch.is_grad_enabled():
            return network(x)
        if fixed:
            check_spatial_size(x, network.patch_size, type(network).__name__)
        skips = _encode(network.encoder, x)
        if fixed:  # the bottleneck block (GASA attention) in float32 also when the convolutions run in bfloat16
            skips[-1] = network._bottleneck(skips[-1].float())
        return _decode(network.decoder, skips)

    return forward
