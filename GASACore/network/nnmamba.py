"""nnMamba (Gong et al. 2024) for segmentation, with or without the GASA block at the end of its encoder.

The topology of the authors' ``nnMambaSeg`` (github lhaof/nnMamba), written here from its description:

* stem: two 3x3x3 convolutions (bias) + BatchNorm + ReLU, the first with stride 2, to ``c = 32`` channels;
* three residual layers (stride 2; ``2c``, ``4c``, ``8c`` channels), each three basic blocks (two 3x3x3
  convolutions without bias, BatchNorm, ReLU, identity or 1x1x1-conv shortcut); the second and third block of a
  layer add the output of one Mamba layer *shared* by both (as in the original);
* Mamba layer: 1x1x1 conv + BN + ReLU, the voxels as a sequence of ``C``-dim tokens through one ``Mamba``
  (``d_state`` 16, ``d_conv`` 4, ``expand`` 2) four times - as is, with the sequence reversed, with the channels
  reversed, with both - averaged after undoing the flips, plus the input, then 1x1x1 conv + BN + ReLU;
* skips scaled by channel attention (global average pool, ``C -> C/16 -> C`` MLP, sigmoid);
* decoder: three times trilinear x2 upsampling, concatenation with the scaled skip and a double convolution
  (``8c+4c -> 4c``, ``4c+2c -> 2c``, ``2c+c -> c``), then upsampling to full resolution and a double
  convolution to the classes, ending, as the original, with BatchNorm and ReLU on the logits.

The bottleneck is ``8c = 256`` channels at ``patch / 16``; with GASA the first decoder convolution takes
``256 + 3 n + 128`` channels. The paper trains nnMamba with its own learning rate (1e-4).

Mamba's selective scan runs only as the CUDA kernels of ``mamba_ssm`` (``pip install mamba-ssm`` on a machine
with an NVIDIA GPU): without them building the network raises a ``RuntimeError`` saying so. ``mixer`` replaces
Mamba by any ``d_model -> nn.Module`` mapping ``(B, L, d_model)`` tokens to the same shape, for research on other
sequence mixers (the test-suite uses one to check the rest of the network on CPU).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from GASACore.network.backbones import Backbone, SkipDecoder, WithGASA
from GASACore.network.topology import Topology

__all__ = ["GASANNMamba", "NNMamba", "mamba_mixer"]

Mixer = Callable[[int], nn.Module]


def mamba_mixer(d_model: int) -> nn.Module:
    """``mamba_ssm.Mamba(d_model, d_state=16, d_conv=4, expand=2)``, refused without CUDA or mamba_ssm."""
    if not torch.cuda.is_available():
        raise RuntimeError(
            "nnMamba needs the CUDA kernels of mamba_ssm (Mamba's selective scan has no CPU implementation) and "
            "this machine has no CUDA device; build it on an NVIDIA GPU machine with `pip install mamba-ssm`"
        )
    try:
        from mamba_ssm import Mamba
    except ImportError as err:
        raise RuntimeError(
            "nnMamba needs mamba_ssm's CUDA kernels: pip install mamba-ssm (it compiles against your torch and CUDA)"
        ) from err
    return Mamba(d_model=d_model, d_state=16, d_conv=4, expand=2)


def _double_conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv3d(out_channels, out_channels, 3, padding=1),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class _MambaLayer(nn.Module):
    def __init__(self, channels: int, mixer: Mixer) -> None:
        super().__init__()
        self.into = nn.Sequential(nn.Conv3d(channels, channels, 1, bias=False), nn.BatchNorm3d(channels), nn.ReLU())
        self.mixer = mixer(channels)
        self.out = nn.Sequential(nn.Conv3d(channels, channels, 1, bias=False), nn.BatchNorm3d(channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.into(x)
        tokens = x.flatten(2).transpose(1, 2)  # (N, L, C)
        mixed = self.mixer(tokens)
        for dims in ((1,), (2,), (1, 2)):  # the sequence reversed, the channels reversed, both
            mixed = mixed + self.mixer(tokens.flip(dims)).flip(dims)
        mixed = mixed / 4
        return self.out(mixed.transpose(1, 2).reshape(x.shape) + x)


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, mamba: _MambaLayer | None) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm3d(out_channels),
        )
        self.shortcut = (
            nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm3d(out_channels)
            )
            if stride != 1 or in_channels != out_channels
            else nn.Identity()
        )
        self.mamba = mamba
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs(x)
        if self.mamba is not None:
            out = out + self.mamba(x)
        return self.relu(out + self.shortcut(x))


class _ChannelGate(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, channels // 16), nn.ReLU(), nn.Linear(channels // 16, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.mlp(x.mean(dim=(2, 3, 4))))[:, :, None, None, None]


class _NNMambaEncoder(nn.Module):
    """Stem and residual layers; returns the three gated skips and the bottleneck."""

    def __init__(self, input_channels: int, channels: int, mixer: Mixer) -> None:
        super().__init__()
        widths = [channels, 2 * channels, 4 * channels, 8 * channels]
        self.stem = _double_conv(input_channels, channels, stride=2)
        layers = []
        for w_in, w_out in itertools.pairwise(widths):
            shared = _MambaLayer(w_out, mixer)
            layers.append(
                nn.Sequential(
                    _BasicBlock(w_in, w_out, 2, None),
                    _BasicBlock(w_out, w_out, 1, shared),
                    _BasicBlock(w_out, w_out, 1, shared),
                )
            )
        self.layers = nn.ModuleList(layers)
        self.gates = nn.ModuleList(_ChannelGate(w) for w in widths[:-1])
        self.output_channels = widths

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]
        for layer in self.layers:
            features.append(layer(features[-1]))
        return [gate(f) for gate, f in zip(self.gates, features[:-1], strict=True)] + [features[-1]]


class _UpBlock(nn.Module):
    """Trilinear x2 upsampling, concatenation with the skip, double convolution."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
        self.conv = _double_conv(in_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat((self.up(x), skip), dim=1))


class NNMamba(Backbone):
    """nnMamba with a fixed input size (see the module docstring).

    Extra keyword arguments: ``nnmamba_channels`` (32), ``mixer`` (default :func:`mamba_mixer`).

    Raises:
        RuntimeError: No CUDA device or no mamba_ssm, with the default mixer.
    """

    encoder_strides = Topology.NNMAMBA.fixed.strides

    def __init__(self, *, nnmamba_channels: int = 32, mixer: Mixer | None = None, **kwargs: Any) -> None:
        if nnmamba_channels < 16:
            raise ValueError(f"nnmamba_channels must be at least 16 (skip gates reduce by 16), got {nnmamba_channels}")
        self._channels = nnmamba_channels
        self._mixer = mixer or mamba_mixer
        super().__init__(**kwargs)

    def _build(self, input_channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
        c = self._channels
        encoder = _NNMambaEncoder(input_channels, c, self._mixer)
        stages = [_UpBlock(8 * c, 4 * c, 4 * c), _UpBlock(4 * c, 2 * c, 2 * c), _UpBlock(2 * c, c, c)]
        head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False), _double_conv(c, num_classes)
        )
        return encoder, SkipDecoder(stages, head, first_input="conv.0")


class GASANNMamba(WithGASA, NNMamba):
    """nnMamba + the GASA block at the end of the encoder (``gasa_*`` options as GASA-UNet)."""
