"""Name -> network registry: ``nnunet``, ``nnunet-resenc``, ``gasa-unet`` and ``gasa-l``.

``build_network`` is the one way the engine, the bundles and training make a network from a plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from GASACore.network.plans import UNetPlan
from GASACore.network.unets import (
    FixedPatchPlainConvUNet,
    FixedPatchResidualEncoderUNet,
    GASAPlainConvUNet,
    GASAResidualEncoderUNet,
)

__all__ = ["NETWORKS", "NetworkSpec", "build_network", "nnunet_architecture_kwargs"]

#: Block options a GASA network accepts (``build_network``'s ``**block_options``) and their defaults.
GASA_OPTION_DEFAULTS: dict[str, Any] = {
    "dim": 25,
    "heads": 5,
    "positional_embedding": "voxels",
    "qkv_norm": False,
    "dropout": 0.5,
}


@dataclass(frozen=True)
class NetworkSpec:
    """How one registry name is built.

    Attributes:
        network_class: the torch module class.
        residual_encoder: ``True`` for ResidualEncoderUNet backbones, ``False`` for PlainConvUNet.
        has_gasa: whether the network takes GASA block options.
        description: one line for help texts.
    """

    network_class: type[nn.Module]
    residual_encoder: bool
    has_gasa: bool
    description: str


NETWORKS: Mapping[str, NetworkSpec] = {
    "nnunet": NetworkSpec(FixedPatchPlainConvUNet, False, False, "nnU-Net v2 PlainConvUNet"),
    "nnunet-resenc": NetworkSpec(FixedPatchResidualEncoderUNet, True, False, "nnU-Net v2 ResidualEncoderUNet"),
    "gasa-unet": NetworkSpec(GASAPlainConvUNet, False, True, "GASA-UNet: PlainConvUNet + GASA block"),
    "gasa-l": NetworkSpec(GASAResidualEncoderUNet, True, True, "GASA-L: ResidualEncoderUNet + GASA block"),
}


def nnunet_architecture_kwargs(plan: UNetPlan, *, residual_encoder: bool) -> dict[str, Any]:
    """The keyword arguments nnU-Net v2 passes to dynamic-network-architectures for ``plan``.

    Convolutions with bias, InstanceNorm3d (eps 1e-5, affine), LeakyReLU(0.01), no dropout.
    """
    kwargs: dict[str, Any] = {
        "n_stages": plan.n_stages,
        "features_per_stage": list(plan.features_per_stage),
        "conv_op": nn.Conv3d,
        "kernel_sizes": [list(k) for k in plan.kernel_sizes],
        "strides": [list(s) for s in plan.strides],
        "conv_bias": True,
        "norm_op": nn.InstanceNorm3d,
        "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": nn.LeakyReLU,
        "nonlin_kwargs": {"inplace": True},
    }
    if residual_encoder:
        kwargs["n_blocks_per_stage"] = list(plan.n_blocks_per_stage)
        kwargs["n_conv_per_stage_decoder"] = list(plan.n_conv_per_stage_decoder_resenc)
    else:
        kwargs["n_conv_per_stage"] = list(plan.n_conv_per_stage)
        kwargs["n_conv_per_stage_decoder"] = list(plan.n_conv_per_stage_decoder)
    return kwargs


def _gasa_kwargs(block_options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(block_options) - set(GASA_OPTION_DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown GASA block options {sorted(unknown)}; expected some of {sorted(GASA_OPTION_DEFAULTS)}"
        )
    options = {**GASA_OPTION_DEFAULTS, **block_options}
    return {
        "gasa_dim": int(options["dim"]),
        "gasa_heads": int(options["heads"]),
        "gasa_pe": str(getattr(options["positional_embedding"], "value", options["positional_embedding"])),
        "gasa_qkv_norm": bool(options["qkv_norm"]),
        "gasa_dropout": float(options["dropout"]),
    }


def build_network(
    name: str,
    *,
    plan: UNetPlan,
    num_input_channels: int,
    num_classes: int,
    deep_supervision: bool = False,
    **block_options: Any,
) -> nn.Module:
    """Build a registered network for ``plan``.

    Args:
        name: a key of ``NETWORKS``.
        plan: the topology; the network only accepts inputs of ``plan.patch_size``.
        num_input_channels: image channels (1 for CT).
        num_classes: output classes including background.
        deep_supervision: return logits of every decoder stage (training) instead of one tensor.
        **block_options: GASA networks only: ``dim``, ``heads``, ``positional_embedding``
            (``none``/``tokens``/``voxels``), ``qkv_norm``, ``dropout``.

    Returns:
        The network, weights initialised as nnU-Net does (He, neg. slope 1e-2), in training mode.

    Raises:
        ValueError: unknown name or option, non-positive channel counts, a plan whose bottleneck is
            under one voxel, or invalid block options.
    """
    spec = NETWORKS.get(name)
    if spec is None:
        raise ValueError(f"unknown network {name!r}; expected one of {sorted(NETWORKS)}")
    if num_input_channels < 1 or num_classes < 2:
        raise ValueError(
            f"num_input_channels must be >= 1 and num_classes >= 2 (background + 1), "
            f"got {num_input_channels} and {num_classes}"
        )
    if block_options and not spec.has_gasa:
        raise ValueError(f"network {name!r} has no GASA block; got block options {sorted(block_options)}")
    plan.bottleneck_size  # noqa: B018 - validates the plan before building anything
    kwargs = nnunet_architecture_kwargs(plan, residual_encoder=spec.residual_encoder)
    if spec.has_gasa:
        kwargs.update(_gasa_kwargs(block_options))
    network = spec.network_class(
        input_channels=num_input_channels,
        num_classes=num_classes,
        deep_supervision=deep_supervision,
        patch_size=plan.patch_size,
        **kwargs,
    )
    initialise: Callable[[nn.Module], None] = spec.network_class.initialize  # type: ignore[attr-defined]
    network.apply(initialise)
    return network
