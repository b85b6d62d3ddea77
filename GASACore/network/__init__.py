"""GASA-UNet networks: the GASA block, the U-Net builders, their registry and plan presets.

Also the paper's comparisons: the attention baselines at GASA's place (CBAM, AT, MAT), GASA on MONAI's V-Net and
UNETR and on nnMamba, nnU-Net v1's topology (Table 4's network) and the thop-rule MAC counter.
"""

from __future__ import annotations

from GASACore.network.axial_attention import AxialSelfAttention3d
from GASACore.network.baselines import ATPlainConvUNet, CBAMPlainConvUNet, MATPlainConvUNet
from GASACore.network.cbam import CBAM3d
from GASACore.network.complexity import Complexity, count_complexity, count_parameters
from GASACore.network.gasa_block import GASABlock, PositionalEmbedding
from GASACore.network.medical_axial import MedicalAxialBlock3d
from GASACore.network.monai_backbones import GASAUNETR, UNETR, GASAVNet, VNet
from GASACore.network.nnmamba import GASANNMamba, NNMamba
from GASACore.network.nnunet_v1 import GASAPlainConvUNetV1, PlainConvUNetV1
from GASACore.network.plans import PAPER_BTCV, UNetPlan
from GASACore.network.registry import GASA_OPTION_DEFAULTS, NETWORKS, NetworkSpec, build_network
from GASACore.network.unets import (
    FixedPatchPlainConvUNet,
    FixedPatchResidualEncoderUNet,
    GASAPlainConvUNet,
    GASAResidualEncoderUNet,
)

__all__ = [
    "GASAUNETR",
    "GASA_OPTION_DEFAULTS",
    "NETWORKS",
    "PAPER_BTCV",
    "UNETR",
    "ATPlainConvUNet",
    "AxialSelfAttention3d",
    "CBAM3d",
    "CBAMPlainConvUNet",
    "Complexity",
    "FixedPatchPlainConvUNet",
    "FixedPatchResidualEncoderUNet",
    "GASABlock",
    "GASANNMamba",
    "GASAPlainConvUNet",
    "GASAPlainConvUNetV1",
    "GASAResidualEncoderUNet",
    "GASAVNet",
    "MATPlainConvUNet",
    "MedicalAxialBlock3d",
    "NNMamba",
    "NetworkSpec",
    "PlainConvUNetV1",
    "PositionalEmbedding",
    "UNetPlan",
    "VNet",
    "build_network",
    "count_complexity",
    "count_parameters",
]
