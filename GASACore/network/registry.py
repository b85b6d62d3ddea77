"""The networks GASACore knows, one :class:`NetworkSpec` each.

========================  ===============  ====================================================================
name                      topology         network
========================  ===============  ====================================================================
``nnunet``                nnunet-unet      nnU-Net v2 ``PlainConvUNet``
``nnunet-resenc``         nnunet-unet      nnU-Net v2 ``ResidualEncoderUNet``
``gasa-unet``             nnunet-unet      ``PlainConvUNet`` + GASA (GASA-UNet)
``gasa-l``                nnunet-unet      ``ResidualEncoderUNet`` (3, .., 3, 5 blocks) + GASA (GASA-L)
``nnunet-cbam``           nnunet-unet      ``PlainConvUNet`` + CBAM at GASA's place (paper's Table 2)
``nnunet-at``             nnunet-unet      ``PlainConvUNet`` + axial attention (AT) at GASA's place
``nnunet-mat``            nnunet-unet      ``PlainConvUNet`` + medical axial transformer (MAT); cubic bottlenecks
``vnet`` / ``vnet-gasa``  monai-vnet       MONAI's V-Net, without / with GASA (paper's Table 1)
``unetr`` / ``unetr-gasa``  monai-unetr    MONAI's UNETR, without / with GASA
``nnmamba`` / ``nnmamba-gasa``  nnmamba    nnMamba, without / with GASA; needs mamba_ssm's CUDA kernels
========================  ===============  ====================================================================

Everything a part of the code needs to know about a network lives in its entry: the class that builds it
(a dotted path, imported only when a network is built), the class names nnU-Net plans use for it, the
dotted path written into plans, its topology (:class:`~GASACore.network.topology.Topology`: built from the
plan's stages, or a backbone with its own), whether its encoder is residual, the options of its block and a
learning rate of its own where the paper trains it with one. The bundle loader, the nnU-Net folder reader,
``gasa-train``'s planning and training, its CLI choices and its variant lists all read this table. It is plain
data: importing this module does not import torch (nor MONAI, which only the V-Net / UNETR classes import, when
built).

Adding a network is one entry in ``NETWORKS`` (plus its class, and a :class:`BlockOptions` subclass if its
block has options).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from GASACore.network.block_options import (
    ATBlockOptions,
    BlockOptions,
    CBAMBlockOptions,
    GASABlockOptions,
    MATBlockOptions,
)
from GASACore.network.topology import Topology

__all__ = [
    "NETWORKS",
    "NetworkSpec",
    "Topology",
    "block_networks",
    "network_for_class_name",
    "network_spec",
    "variant_networks",
]

_DNA_UNET = "dynamic_network_architectures.architectures.unet"
_UNETS = "GASACore.network.unets"
_BASELINES = "GASACore.network.baselines"
_MONAI = "GASACore.network.monai_backbones"
_NNMAMBA = "GASACore.network.nnmamba"


@dataclass(frozen=True)
class NetworkSpec:
    """How one registered network is built, named in nnU-Net plans and configured.

    Attributes:
        name: the registry name (``gasa-unet``), as bundles' ``architecture.name`` stores it.
        class_path: dotted path of the class :func:`GASACore.network.build_network` instantiates; it takes
            dynamic-network-architectures' keyword arguments plus ``patch_size`` and the block's keywords.
        plans_class_path: dotted path written as ``network_class_name`` into nnU-Net plans for this network
            (our class for networks nnU-Net does not have; nnU-Net's own class otherwise).
        nnunet_class_names: class names that mean this network in an nnU-Net plan's ``network_class_name``.
        residual_encoder: ``True`` for a ``ResidualEncoderUNet`` backbone, ``False`` for ``PlainConvUNet``.
        block_options: the options class of the network's block; ``None`` for a network without one.
        description: one line for help texts.
        topology: ``nnunet-unet`` (built from the plan's stages) or a backbone with its own topology, whose class
            takes only ``patch_size`` (and the block's keywords) of the plan.
        initial_lr: the learning rate the paper trains this network with where it is not nnU-Net's (nnMamba:
            1e-4, its authors'); ``None``: the training recipe's.
    """

    name: str
    class_path: str
    plans_class_path: str
    nnunet_class_names: tuple[str, ...]
    residual_encoder: bool
    block_options: type[BlockOptions] | None
    description: str
    topology: Topology = Topology.NNUNET_UNET
    initial_lr: float | None = None

    @property
    def has_block(self) -> bool:
        """Whether the network adds a block (with options) to its U-Net."""
        return self.block_options is not None

    @property
    def deep_supervision(self) -> bool:
        """Whether the network has deep-supervision outputs (the other backbones train without)."""
        return self.topology.deep_supervision

    @property
    def requires_cuda(self) -> bool:
        """Whether the network runs on CUDA only (its topology's kernels; nnMamba)."""
        return self.topology.requires_cuda

    @property
    def plans_take_patch_size(self) -> bool:
        """Whether the class named in plans takes ``patch_size`` (GASACore's classes do, nnU-Net's do not)."""
        return self.plans_class_path.startswith("GASACore.")

    def network_class(self) -> type[Any]:
        """The class named by ``class_path`` (imports torch)."""
        module, _, name = self.class_path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def parse_block_options(self, options: BlockOptions | Mapping[str, Any] | None) -> BlockOptions | None:
        """Validated block options of this network: its defaults when ``options`` is empty.

        Args:
            options: an instance of ``block_options``, or a mapping of field names (a bundle's JSON).

        Raises:
            ValueError: options for a network without a block, options of another block, unknown keys or
                invalid values.
        """
        if self.block_options is None:
            if options:
                given = sorted(options) if isinstance(options, Mapping) else type(options).__name__
                raise ValueError(f"network {self.name!r} has no block, so it takes no block options; got {given}")
            return None
        if isinstance(options, BlockOptions):
            if not isinstance(options, self.block_options):
                raise ValueError(
                    f"network {self.name!r} takes {self.block_options.__name__}, got {type(options).__name__}"
                )
            return options
        return self.block_options.from_json(options)


NETWORKS: Mapping[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        NetworkSpec(
            name="nnunet",
            class_path=f"{_UNETS}.FixedPatchPlainConvUNet",
            plans_class_path=f"{_DNA_UNET}.PlainConvUNet",
            nnunet_class_names=("PlainConvUNet", "FixedPatchPlainConvUNet"),
            residual_encoder=False,
            block_options=None,
            description="nnU-Net v2 PlainConvUNet",
        ),
        NetworkSpec(
            name="nnunet-resenc",
            class_path=f"{_UNETS}.FixedPatchResidualEncoderUNet",
            plans_class_path=f"{_DNA_UNET}.ResidualEncoderUNet",
            nnunet_class_names=("ResidualEncoderUNet", "FixedPatchResidualEncoderUNet"),
            residual_encoder=True,
            block_options=None,
            description="nnU-Net v2 ResidualEncoderUNet",
        ),
        NetworkSpec(
            name="gasa-unet",
            class_path=f"{_UNETS}.GASAPlainConvUNet",
            plans_class_path=f"{_UNETS}.GASAPlainConvUNet",
            nnunet_class_names=("GASAPlainConvUNet",),
            residual_encoder=False,
            block_options=GASABlockOptions,
            description="GASA-UNet: PlainConvUNet + GASA block",
        ),
        NetworkSpec(
            name="gasa-l",
            class_path=f"{_UNETS}.GASAResidualEncoderUNet",
            plans_class_path=f"{_UNETS}.GASAResidualEncoderUNet",
            nnunet_class_names=("GASAResidualEncoderUNet",),
            residual_encoder=True,
            block_options=GASABlockOptions,
            description="GASA-L: ResidualEncoderUNet + GASA block",
        ),
        *(
            NetworkSpec(
                name=f"nnunet-{block}",
                class_path=f"{_BASELINES}.{cls}",
                plans_class_path=f"{_BASELINES}.{cls}",
                nnunet_class_names=(cls,),
                residual_encoder=False,
                block_options=options,
                description=f"PlainConvUNet + {title} at GASA's place (paper's Table 2 baseline)",
            )
            for block, cls, options, title in (
                ("cbam", "CBAMPlainConvUNet", CBAMBlockOptions, "CBAM"),
                ("at", "ATPlainConvUNet", ATBlockOptions, "axial attention (AT)"),
                ("mat", "MATPlainConvUNet", MATBlockOptions, "medical axial transformer (MAT; cubic bottlenecks)"),
            )
        ),
        *(
            NetworkSpec(
                name=name,
                class_path=f"{module}.{cls}",
                plans_class_path=f"{module}.{cls}",
                nnunet_class_names=(cls,),
                residual_encoder=False,
                block_options=GASABlockOptions if cls.startswith("GASA") else None,
                description=description,
                topology=topology,
                initial_lr=lr,
            )
            for name, module, cls, topology, lr, description in (
                ("vnet", _MONAI, "VNet", Topology.MONAI_VNET, None, "MONAI V-Net"),
                ("vnet-gasa", _MONAI, "GASAVNet", Topology.MONAI_VNET, None, "MONAI V-Net + GASA block"),
                ("unetr", _MONAI, "UNETR", Topology.MONAI_UNETR, None, "MONAI UNETR"),
                ("unetr-gasa", _MONAI, "GASAUNETR", Topology.MONAI_UNETR, None, "MONAI UNETR + GASA block"),
                ("nnmamba", _NNMAMBA, "NNMamba", Topology.NNMAMBA, 1e-4, "nnMamba (CUDA: mamba_ssm)"),
                ("nnmamba-gasa", _NNMAMBA, "GASANNMamba", Topology.NNMAMBA, 1e-4, "nnMamba + GASA block (CUDA)"),
            )
        ),
    )
}


def network_spec(name: str) -> NetworkSpec:
    """The entry of a registry name.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    spec = NETWORKS.get(name)
    if spec is None:
        raise ValueError(f"unknown network {name!r}; expected one of {sorted(NETWORKS)}")
    return spec


def network_for_class_name(class_name: str) -> NetworkSpec:
    """The entry whose nnU-Net class names hold ``class_name`` (a bare name or a dotted path).

    Example: ``"dynamic_network_architectures.architectures.unet.PlainConvUNet"`` -> the ``nnunet`` entry.
    The backbones of a fixed topology match only their own dotted path (or the bare name): MONAI's own
    ``monai.networks.nets.UNETR`` is another class, with other keywords.

    Raises:
        ValueError: no registered network has that class.
    """
    bare = str(class_name).rsplit(".", 1)[-1]
    for spec in NETWORKS.values():
        if bare not in spec.nnunet_class_names:
            continue
        if spec.topology.follows_plan or "." not in str(class_name) or class_name == spec.plans_class_path:
            return spec
    known = sorted(name for spec in NETWORKS.values() for name in spec.nnunet_class_names)
    raise ValueError(f"unsupported network class {class_name!r}; supported: {known}")


def block_networks() -> tuple[str, ...]:
    """Names of the networks that add a block to their backbone (GASA, CBAM, AT, MAT)."""
    return tuple(name for name, spec in NETWORKS.items() if spec.has_block)


def variant_networks() -> tuple[str, ...]:
    """The networks ``gasa-train plan`` derives from nnU-Net's plans: every one but nnU-Net's own U-Nets."""
    return tuple(name for name, spec in NETWORKS.items() if spec.has_block or not spec.topology.follows_plan)
