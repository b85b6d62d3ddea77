"""The networks GASACore knows, one :class:`NetworkSpec` each: ``nnunet``, ``nnunet-resenc``, ``gasa-unet``, ``gasa-l``.

Everything a part of the code needs to know about a network lives in its entry: the class that builds it
(a dotted path, imported only when a network is built), the class names nnU-Net plans use for it, the
dotted path written into plans, whether its encoder is residual and the options of its block. The
bundle loader, the nnU-Net folder reader, ``gasa-train``'s planning, its CLI choices and its variant lists
all read this table. It is plain data: importing this module does not import torch.

Adding a network is one entry in ``NETWORKS`` (plus its class, and a :class:`BlockOptions` subclass if its
block has options).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from GASACore.network.block_options import BlockOptions, GASABlockOptions

__all__ = ["NETWORKS", "NetworkSpec", "block_networks", "network_for_class_name", "network_spec"]

_DNA_UNET = "dynamic_network_architectures.architectures.unet"
_UNETS = "GASACore.network.unets"


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
    """

    name: str
    class_path: str
    plans_class_path: str
    nnunet_class_names: tuple[str, ...]
    residual_encoder: bool
    block_options: type[BlockOptions] | None
    description: str

    @property
    def has_block(self) -> bool:
        """Whether the network adds a block (with options) to its U-Net."""
        return self.block_options is not None

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

    Raises:
        ValueError: no registered network has that class.
    """
    bare = str(class_name).rsplit(".", 1)[-1]
    for spec in NETWORKS.values():
        if bare in spec.nnunet_class_names:
            return spec
    known = sorted(name for spec in NETWORKS.values() for name in spec.nnunet_class_names)
    raise ValueError(f"unsupported network class {class_name!r}; supported: {known}")


def block_networks() -> tuple[str, ...]:
    """Names of the networks that add a block to nnU-Net's U-Net: the variants ``gasa-train plan`` derives."""
    return tuple(name for name, spec in NETWORKS.items() if spec.has_block)
