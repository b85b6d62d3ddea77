"""Common frame of the other backbones of the paper's Table 1 (V-Net, UNETR, nnMamba), with or without GASA.

A backbone is an ``encoder`` that returns its stage outputs (the skips, the bottleneck last) and a ``decoder``
that turns them into logits, as in nnU-Net. The GASA block sits between them, at the end of the encoder, and the
decoder's first upsampling takes its ``C + 3 n`` channels, exactly as in GASA-UNet.

Constructor interface: keyword-only, the arguments nnU-Net v2 passes to dynamic-network-architectures'
``PlainConvUNet`` (``input_channels``, ``num_classes``, ``deep_supervision`` and the topology keywords of
:data:`PLAN_KEYWORDS`), plus ``patch_size`` and, for GASA variants, the ``gasa_*`` options of
:class:`~GASACore.network.unets.GASAPlainConvUNet`. The topology keywords are accepted so that one registry entry
or an nnU-Net plans file builds every network, and ignored: each backbone keeps its published topology.

Deep supervision: these backbones have a single output. ``deep_supervision=True`` (also settable later through
``network.decoder.deep_supervision``, which nnU-Net's trainer toggles) makes ``forward`` return a one-element
list ``[logits]`` so that code expecting deep-supervision lists runs. nnU-Net's ``DeepSupervisionWrapper`` then
weighs the loss by its first weight only (about 0.53 for 5 scales): train them with deep supervision off
(nnU-Net's ``nnUNetTrainerNoDeepSupervision``), as the paper's backbones have none.

Layout: input ``(N, C_in, X, Y, Z)`` of exactly ``patch_size``; logits ``(N, K, X, Y, Z)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from GASACore.network.block_options import GASABlockOptions
from GASACore.network.gasa_block import GASABlock, check_spatial_size
from GASACore.network.plans import bottleneck_size

__all__ = ["PLAN_KEYWORDS", "Backbone", "SkipDecoder", "WithGASA", "with_more_inputs"]

logger = logging.getLogger(__name__)

#: dynamic-network-architectures ``PlainConvUNet`` keywords a backbone accepts and ignores (its topology is fixed).
PLAN_KEYWORDS = frozenset(
    {
        "n_stages",
        "features_per_stage",
        "conv_op",
        "kernel_sizes",
        "strides",
        "n_conv_per_stage",
        "n_conv_per_stage_decoder",
        "conv_bias",
        "norm_op",
        "norm_op_kwargs",
        "dropout_op",
        "dropout_op_kwargs",
        "nonlin",
        "nonlin_kwargs",
        "nonlin_first",
    }
)


def with_more_inputs(conv: nn.Module, extra: int) -> nn.Module:
    """A fresh (transposed) convolution like ``conv`` - same type, output, kernel, stride, padding, bias - with
    ``extra`` more input channels (freshly initialised by PyTorch's default)."""
    if not isinstance(conv, nn.modules.conv._ConvNd) or conv.groups != 1:
        raise ValueError(f"expected an ungrouped (transposed) convolution to widen, got {conv!r}")
    common = {"stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation, "bias": conv.bias is not None}
    if isinstance(conv, nn.modules.conv._ConvTransposeNd):
        common["output_padding"] = conv.output_padding
    return type(conv)(conv.in_channels + extra, conv.out_channels, conv.kernel_size, **common)


class Backbone(nn.Module):
    """Encoder -> optional GASA block -> decoder, for inputs of exactly ``patch_size``.

    Subclasses set ``encoder_strides`` (per encoder output, the first at full resolution or not) and implement
    :meth:`_build`, returning an encoder with ``output_channels`` (per output) and a decoder with
    ``deep_supervision`` and ``widen_input(extra_channels)``. GASA variants derive from :class:`WithGASA` too.

    Raises:
        ValueError: A patch size that is not a multiple of the backbone's total stride.
        TypeError: An unknown keyword argument.
    """

    encoder_strides: ClassVar[tuple[tuple[int, int, int], ...]] = ()
    _gasa_options: dict[str, Any] | None = None

    def __init__(
        self,
        *,
        input_channels: int,
        num_classes: int,
        patch_size: Sequence[int],
        deep_supervision: bool = False,
        **plan_keywords: Any,
    ) -> None:
        super().__init__()
        unknown = sorted(set(plan_keywords) - PLAN_KEYWORDS)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {unknown}")
        if input_channels < 1 or num_classes < 1:
            raise ValueError(f"input_channels and num_classes must be positive, got {input_channels}, {num_classes}")
        self.patch_size: tuple[int, int, int] = tuple(int(p) for p in patch_size)  # type: ignore[assignment]
        self.bottleneck_size = bottleneck_size(self.patch_size, self.encoder_strides)
        self.encoder, self.decoder = self._build(input_channels, num_classes)
        self.decoder.deep_supervision = bool(deep_supervision)
        self.gasa: GASABlock | None = None
        if self._gasa_options is not None:
            channels = self.encoder.output_channels[-1]
            self.gasa = GASABlock(channels=channels, spatial_size=self.bottleneck_size, **self._gasa_options)
            self.decoder.widen_input(self.gasa.out_channels - channels)
        if plan_keywords:
            logger.debug("%s keeps its own topology; ignoring %s", type(self).__name__, sorted(plan_keywords))

    def _build(self, input_channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
        raise NotImplementedError

    @staticmethod
    def initialize(module: nn.Module) -> None:
        """No-op for nnU-Net's ``network.apply(network.initialize)``: the backbone keeps its own initialisation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """``(N, C_in, *patch_size) -> (N, K, *patch_size)``, or ``[logits]`` with deep supervision."""
        check_spatial_size(x, self.patch_size, type(self).__name__)
        skips = list(self.encoder(x))
        if self.gasa is not None:
            skips[-1] = self.gasa(skips[-1])
        return self.decoder(skips)


class WithGASA:
    """Mixin for ``class GASAX(WithGASA, X)``: the GASA block at the end of backbone ``X``'s encoder.

    Keyword arguments (as :class:`~GASACore.network.unets.GASAPlainConvUNet`): the ``GASABlockOptions`` keywords
    ``gasa_dim``, ``gasa_heads``, ``gasa_pe``, ``gasa_qkv_norm``, ``gasa_dropout`` (the paper's defaults when absent).
    """

    def __init__(self, **kwargs: Any) -> None:
        self._gasa_options = GASABlockOptions.pop_network_kwargs(kwargs).to_json()
        super().__init__(**kwargs)


class SkipDecoder(nn.Module):
    """Decoder of up-blocks ``stage(lower, skip)`` from the bottleneck up, then a head; see :class:`Backbone`.

    Args:
        stages: Up-blocks, deepest first; each takes ``(features from below, skip)``.
        head: Maps the last stage's output to logits.
        first_input: Attribute path (dots) in the first stage of the (transposed) convolution that first sees the
            bottleneck features, widened by :meth:`widen_input`.
    """

    def __init__(self, stages: Sequence[nn.Module], head: nn.Module, first_input: str) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.first_input = first_input
        self.deep_supervision = False

    def widen_input(self, extra_channels: int) -> None:
        """Let the first up-block take ``extra_channels`` more bottleneck channels (the GASA feature)."""
        *path, name = self.first_input.split(".")
        owner = self.stages[0]
        for part in path:
            owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
        if name.isdigit():
            owner[int(name)] = with_more_inputs(owner[int(name)], extra_channels)
        else:
            setattr(owner, name, with_more_inputs(getattr(owner, name), extra_channels))

    def forward(self, skips: Sequence[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        x = skips[-1]
        for s, stage in enumerate(self.stages):
            x = stage(x, skips[-(s + 2)])
        logits = self.head(x)
        return [logits] if self.deep_supervision else logits
