"""GASA-UNet networks: the GASA block, the U-Net builders, their registry and plan presets."""

from __future__ import annotations

from GASACore.network.gasa_block import GASABlock, PositionalEmbedding
from GASACore.network.plans import PAPER_BTCV, UNetPlan
from GASACore.network.registry import GASA_OPTION_DEFAULTS, NETWORKS, NetworkSpec, build_network
from GASACore.network.unets import (
    FixedPatchPlainConvUNet,
    FixedPatchResidualEncoderUNet,
    GASAPlainConvUNet,
    GASAResidualEncoderUNet,
)

__all__ = [
    "GASA_OPTION_DEFAULTS",
    "NETWORKS",
    "PAPER_BTCV",
    "FixedPatchPlainConvUNet",
    "FixedPatchResidualEncoderUNet",
    "GASABlock",
    "GASAPlainConvUNet",
    "GASAResidualEncoderUNet",
    "NetworkSpec",
    "PositionalEmbedding",
    "UNetPlan",
    "build_network",
]
