"""``build_network``: the one way the engine, the bundles and training make a registered network from a plan."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from torch import nn

from GASACore.network.block_options import BlockOptions
from GASACore.network.nnunet_plans import REQUIRES_IMPORT, network_arch_kwargs
from GASACore.network.plans import UNetPlan
from GASACore.network.registry import network_spec

__all__ = ["build_network", "resolve_operations"]


def _locate(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def resolve_operations(arch_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``arch_kwargs`` with the dotted operation paths (``conv_op``...) replaced by the torch classes."""
    return {
        key: _locate(value) if key in REQUIRES_IMPORT and isinstance(value, str) else value
        for key, value in arch_kwargs.items()
    }


def build_network(
    name: str,
    *,
    plan: UNetPlan,
    num_input_channels: int,
    num_classes: int,
    deep_supervision: bool = False,
    block_options: BlockOptions | Mapping[str, Any] | None = None,
    **options: Any,
) -> nn.Module:
    """Build a registered network for ``plan``.

    The class gets what its topology takes (``NetworkSpec.topology``): nnU-Net U-Nets the plan's stages as
    dynamic-network-architectures' keywords, the backbones with a fixed topology (V-Net, UNETR, nnMamba) only
    ``patch_size``; both the block's keywords.

    Args:
        name: a key of ``GASACore.network.NETWORKS``.
        plan: the topology (for fixed-topology backbones: theirs, ``Topology.plan_for``); the network only
            accepts inputs of ``plan.patch_size``.
        num_input_channels: image channels (1 for CT).
        num_classes: output classes including background.
        deep_supervision: return logits of every decoder stage (training) instead of one tensor.
        block_options: the block's options (``GASABlockOptions`` or a mapping of its fields); the network's
            defaults when ``None``.
        **options: block option fields given one by one (``dim=50, heads=10``), merged over ``block_options``.

    Returns:
        The network, weights initialised as nnU-Net does (He, neg. slope 1e-2), in training mode.

    Raises:
        ValueError: unknown name or option, options for a network without a block, non-positive channel
            counts, a plan whose bottleneck is under one voxel (or not the backbone's own), invalid block options
            or (MAT) a bottleneck that is not cubic.
        ImportError: V-Net / UNETR without MONAI (a ``gasa-train`` dependency).
        RuntimeError: nnMamba without CUDA and mamba_ssm.
    """
    spec = network_spec(name)
    if num_input_channels < 1 or num_classes < 2:
        raise ValueError(
            f"num_input_channels must be >= 1 and num_classes >= 2 (background + 1), "
            f"got {num_input_channels} and {num_classes}"
        )
    if options:
        base = block_options.to_json() if isinstance(block_options, BlockOptions) else dict(block_options or {})
        block_options = {**base, **options}
    parsed = spec.parse_block_options(block_options)
    spec.topology.check_plan(plan, name)  # before building anything
    if spec.topology.follows_plan:
        kwargs = resolve_operations(network_arch_kwargs(name, plan, parsed))
    else:
        kwargs = parsed.to_network_kwargs() if parsed is not None else {}
    network_class = spec.network_class()
    network = network_class(
        input_channels=num_input_channels,
        num_classes=num_classes,
        deep_supervision=deep_supervision,
        patch_size=plan.patch_size,
        **kwargs,
    )
    network.apply(network_class.initialize)
    return network
