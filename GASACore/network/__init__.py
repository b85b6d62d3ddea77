"""GASA-UNet networks: the registry of networks and their plans and options, the GASA block, the U-Net builders.

Also the paper's comparisons: the attention baselines at GASA's place (CBAM, AT, MAT), GASA on MONAI's V-Net and
UNETR and on nnMamba, nnU-Net v1's topology (Table 4's network) and the thop-rule MAC counter.

The registry (``NETWORKS``), plans (``UNetPlan``), block options (``GASABlockOptions``) and the nnU-Net plans
conversion are plain data and import without torch. The torch modules (``GASABlock``, the U-Net classes,
``build_network``, the comparisons) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from GASACore.network.block_options import (
    ATBlockOptions,
    BlockOptions,
    CBAMBlockOptions,
    GASABlockOptions,
    MATBlockOptions,
    PositionalEmbedding,
)
from GASACore.network.nnunet_plans import (
    NNUNetArchitecture,
    architecture_from_nnunet,
    network_arch_kwargs,
    nnunet_architecture,
    plan_from_arch_kwargs,
)
from GASACore.network.plans import NAMED_PLANS, PAPER_BTCV, UNetPlan, bottleneck_size
from GASACore.network.registry import (
    NETWORKS,
    NetworkSpec,
    block_networks,
    network_for_class_name,
    network_spec,
    variant_networks,
)
from GASACore.network.topology import FixedTopology, Topology

if TYPE_CHECKING:  # torch modules, for type checkers (at run time they are imported on first use)
    from GASACore.network.axial_attention import AxialSelfAttention3d
    from GASACore.network.baselines import ATPlainConvUNet, CBAMPlainConvUNet, MATPlainConvUNet
    from GASACore.network.build import build_network, resolve_operations
    from GASACore.network.cbam import CBAM3d
    from GASACore.network.complexity import Complexity, count_complexity, count_parameters
    from GASACore.network.gasa_block import GASABlock
    from GASACore.network.medical_axial import MedicalAxialBlock3d
    from GASACore.network.monai_backbones import GASAUNETR, UNETR, GASAVNet, VNet
    from GASACore.network.nnmamba import GASANNMamba, NNMamba
    from GASACore.network.nnunet_v1 import GASAPlainConvUNetV1, PlainConvUNetV1
    from GASACore.network.unets import (
        FixedPatchPlainConvUNet,
        FixedPatchResidualEncoderUNet,
        GASAPlainConvUNet,
        GASAResidualEncoderUNet,
    )

#: Torch-using names -> the module that defines them (imported on first access).
_LAZY = {
    "AxialSelfAttention3d": "axial_attention",
    **dict.fromkeys(("ATPlainConvUNet", "CBAMPlainConvUNet", "MATPlainConvUNet"), "baselines"),
    **dict.fromkeys(("build_network", "resolve_operations"), "build"),
    "CBAM3d": "cbam",
    **dict.fromkeys(("Complexity", "count_complexity", "count_parameters"), "complexity"),
    "GASABlock": "gasa_block",
    "MedicalAxialBlock3d": "medical_axial",
    **dict.fromkeys(("GASAUNETR", "UNETR", "GASAVNet", "VNet"), "monai_backbones"),
    **dict.fromkeys(("GASANNMamba", "NNMamba"), "nnmamba"),
    **dict.fromkeys(("GASAPlainConvUNetV1", "PlainConvUNetV1"), "nnunet_v1"),
    **dict.fromkeys(
        ("FixedPatchPlainConvUNet", "FixedPatchResidualEncoderUNet", "GASAPlainConvUNet", "GASAResidualEncoderUNet"),
        "unets",
    ),
}

__all__ = [
    "GASAUNETR",
    "NAMED_PLANS",
    "NETWORKS",
    "PAPER_BTCV",
    "UNETR",
    "ATBlockOptions",
    "ATPlainConvUNet",
    "AxialSelfAttention3d",
    "BlockOptions",
    "CBAM3d",
    "CBAMBlockOptions",
    "CBAMPlainConvUNet",
    "Complexity",
    "FixedPatchPlainConvUNet",
    "FixedPatchResidualEncoderUNet",
    "FixedTopology",
    "GASABlock",
    "GASABlockOptions",
    "GASANNMamba",
    "GASAPlainConvUNet",
    "GASAPlainConvUNetV1",
    "GASAResidualEncoderUNet",
    "GASAVNet",
    "MATBlockOptions",
    "MATPlainConvUNet",
    "MedicalAxialBlock3d",
    "NNMamba",
    "NNUNetArchitecture",
    "NetworkSpec",
    "PlainConvUNetV1",
    "PositionalEmbedding",
    "Topology",
    "UNetPlan",
    "VNet",
    "architecture_from_nnunet",
    "block_networks",
    "bottleneck_size",
    "build_network",
    "count_complexity",
    "count_parameters",
    "network_arch_kwargs",
    "network_for_class_name",
    "network_spec",
    "nnunet_architecture",
    "plan_from_arch_kwargs",
    "resolve_operations",
    "variant_networks",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'GASACore.network' has no attribute {name!r}")
    return getattr(importlib.import_module(f"GASACore.network.{module}"), name)


def __dir__() -> list[str]:
    return list(__all__)
