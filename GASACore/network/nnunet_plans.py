"""The one conversion between nnU-Net v2 plans (``configurations[...]["architecture"]``) and a registered network.

nnU-Net v2 (>= 2.4) plans describe a network as ``network_class_name`` + ``arch_kwargs`` (with operations
such as ``conv_op`` as dotted paths, listed in ``_kw_requires_import``). This module turns such a
description into ``(registry name, UNetPlan, block options)`` and back. It is plain data and torch-free:
:func:`GASACore.network.build_network` resolves the dotted operations when it builds.

Every network GASACore builds uses nnU-Net's default operations (:data:`NNUNET_OPS`): 3D convolutions with
bias, InstanceNorm3d (eps 1e-5, affine), LeakyReLU (slope 0.01), no dropout. Plans naming anything else are
refused rather than built differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from GASACore.network.block_options import BlockOptions
from GASACore.network.plans import UNetPlan
from GASACore.network.registry import NetworkSpec, network_for_class_name, network_spec

__all__ = [
    "NNUNET_OPS",
    "NNUNetArchitecture",
    "architecture_from_nnunet",
    "network_arch_kwargs",
    "nnunet_architecture",
    "plan_from_arch_kwargs",
]

#: nnU-Net v2's default operations for a 3D U-Net, as its plans store them.
NNUNET_OPS: Mapping[str, Any] = {
    "conv_op": "torch.nn.modules.conv.Conv3d",
    "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
    "norm_op_kwargs": {"eps": 1e-05, "affine": True},
    "dropout_op": None,
    "dropout_op_kwargs": None,
    "nonlin": "torch.nn.LeakyReLU",
    "nonlin_kwargs": {"inplace": True},
}
#: The ``arch_kwargs`` entries nnU-Net imports from their dotted paths.
REQUIRES_IMPORT = ("conv_op", "norm_op", "dropout_op", "nonlin")
_LEAKY_SLOPE = 1e-2


@dataclass(frozen=True)
class NNUNetArchitecture:
    """A network read from nnU-Net plans: registry name, topology and block options (``None`` without block)."""

    name: str
    plan: UNetPlan
    block_options: BlockOptions | None


def network_arch_kwargs(name: str, plan: UNetPlan, block_options: BlockOptions | None = None) -> dict[str, Any]:
    """The keyword arguments of network ``name`` for ``plan`` as nnU-Net plans store them (no ``patch_size``).

    Plain JSON: operations are dotted paths. The residual-encoder networks get ``n_blocks_per_stage`` and
    ``plan.n_conv_per_stage_decoder_resenc``; the plain ones ``n_conv_per_stage`` and
    ``plan.n_conv_per_stage_decoder``. Block networks add their block's keywords (``gasa_dim`` ...). Networks of
    a fixed topology (V-Net, UNETR, nnMamba) get the plain U-Net keywords of their own plan, which their classes
    accept and ignore, so that nnU-Net builds them from plans and the plan reads back from the plans file.

    Raises:
        ValueError: unknown name, block options that do not belong to the network, or (fixed topologies) a
            plan that is not the backbone's own.
    """
    spec = network_spec(name)
    options = spec.parse_block_options(block_options)
    if not spec.topology.follows_plan:
        spec.topology.check_plan(plan, name)
    kwargs: dict[str, Any] = {
        "n_stages": plan.n_stages,
        "features_per_stage": list(plan.features_per_stage),
        "conv_op": NNUNET_OPS["conv_op"],
        "kernel_sizes": [list(k) for k in plan.kernel_sizes],
        "strides": [list(s) for s in plan.strides],
    }
    if spec.residual_encoder:
        kwargs["n_blocks_per_stage"] = list(plan.n_blocks_per_stage)
        kwargs["n_conv_per_stage_decoder"] = list(plan.n_conv_per_stage_decoder_resenc)
    else:
        kwargs["n_conv_per_stage"] = list(plan.n_conv_per_stage)
        kwargs["n_conv_per_stage_decoder"] = list(plan.n_conv_per_stage_decoder)
    kwargs["conv_bias"] = True
    kwargs.update({key: _copy(value) for key, value in NNUNET_OPS.items() if key != "conv_op"})
    if options is not None:
        kwargs.update(options.to_network_kwargs())
    return kwargs


def nnunet_architecture(name: str, plan: UNetPlan, block_options: BlockOptions | None = None) -> dict[str, Any]:
    """The ``architecture`` entry of an nnU-Net v2 plans configuration that builds network ``name``.

    ``network_class_name`` is the entry's ``plans_class_path``; GASACore's classes also get ``patch_size``
    (their bottleneck block is built for one input size).
    """
    spec = network_spec(name)
    kwargs = network_arch_kwargs(name, plan, block_options)
    if spec.plans_take_patch_size:
        kwargs["patch_size"] = list(plan.patch_size)
    return {
        "network_class_name": spec.plans_class_path,
        "arch_kwargs": kwargs,
        "_kw_requires_import": list(REQUIRES_IMPORT),
    }


def plan_from_arch_kwargs(patch_size: Any, arch_kwargs: Mapping[str, Any], *, residual_encoder: bool) -> UNetPlan:
    """The :class:`UNetPlan` of nnU-Net ``arch_kwargs`` (a plain or a residual-encoder U-Net) and a patch size.

    Raises:
        KeyError: a topology entry is missing. ValueError: the topology is invalid (see ``UNetPlan``).
    """
    decoder = arch_kwargs["n_conv_per_stage_decoder"]
    return UNetPlan(
        patch_size=tuple(patch_size),
        strides=arch_kwargs["strides"],
        kernel_sizes=arch_kwargs["kernel_sizes"],
        features_per_stage=arch_kwargs["features_per_stage"],
        n_conv_per_stage=() if residual_encoder else arch_kwargs["n_conv_per_stage"],
        n_conv_per_stage_decoder=() if residual_encoder else decoder,
        n_blocks_per_stage=arch_kwargs["n_blocks_per_stage"] if residual_encoder else (),
        n_conv_per_stage_decoder_resenc=decoder if residual_encoder else (),
    )


def architecture_from_nnunet(configuration: Mapping[str, Any]) -> NNUNetArchitecture:
    """The registered network, plan and block options of one nnU-Net v2 plans configuration.

    Args:
        configuration: ``plans["configurations"][name]`` (with ``patch_size`` and ``architecture``).

    Raises:
        ValueError: no ``architecture`` (plans older than nnU-Net 2.4), an unsupported class, operations other
            than nnU-Net's defaults (named with what was expected), a missing or invalid topology entry.
    """
    architecture = configuration.get("architecture")
    if not isinstance(architecture, Mapping) or "arch_kwargs" not in architecture:
        raise ValueError("plans configuration has no 'architecture.arch_kwargs' (nnU-Net v2 >= 2.4 plans expected)")
    spec = network_for_class_name(str(architecture.get("network_class_name", "")))
    kwargs = architecture["arch_kwargs"]
    _check_operations(spec, kwargs)
    try:
        plan = plan_from_arch_kwargs(configuration["patch_size"], kwargs, residual_encoder=spec.residual_encoder)
    except KeyError as err:
        raise ValueError(f"{spec.plans_class_path} plans need arch_kwargs {err}, got {sorted(kwargs)}") from None
    if not spec.topology.follows_plan:
        spec.topology.check_plan(plan, spec.name)
    options = spec.block_options.from_network_kwargs(kwargs) if spec.block_options else None
    return NNUNetArchitecture(spec.name, plan, options)


def _check_operations(spec: NetworkSpec, kwargs: Mapping[str, Any]) -> None:
    """Refuse plans whose operations differ from the ones GASACore builds (instead of building another net)."""
    problems = []
    for key in ("conv_op", "norm_op", "nonlin"):
        expected = str(NNUNET_OPS[key]).rsplit(".", 1)[-1]
        given = str(kwargs.get(key, "")).rsplit(".", 1)[-1].strip("'>")
        if given != expected:
            problems.append(f"{key} {expected} (got {kwargs.get(key)!r})")
    norm = dict(kwargs.get("norm_op_kwargs") or {})
    if float(norm.get("eps", 1e-5)) != 1e-5 or not norm.get("affine", False):
        problems.append(f"norm_op_kwargs eps 1e-05 and affine True (got {norm})")
    slope = float(dict(kwargs.get("nonlin_kwargs") or {}).get("negative_slope", _LEAKY_SLOPE))
    if slope != _LEAKY_SLOPE:
        problems.append(f"LeakyReLU negative_slope 0.01 (got {slope})")
    if kwargs.get("dropout_op") is not None:
        problems.append(f"no dropout_op (got {kwargs.get('dropout_op')!r})")
    if not kwargs.get("conv_bias", False):
        problems.append(f"conv_bias True (got {kwargs.get('conv_bias')!r})")
    if problems:
        needs = "; ".join(problems)
        raise ValueError(f"only 3D networks with nnU-Net's default operations are supported; {spec.name} needs {needs}")


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value
