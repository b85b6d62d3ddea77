"""nnU-Net + the paper's attention baselines at GASA's place: CBAM, AT and MAT after the last encoder stage.

Each class is nnU-Net v2's ``PlainConvUNet`` with a fixed input size (as
:class:`~GASACore.network.unets.FixedPatchPlainConvUNet`) whose bottleneck runs through one block before the
decoder. The blocks keep the channel count, so the decoder is exactly nnU-Net's (GASA, by contrast, adds ``3 n``
channels and widens the first transposed convolution). State-dict keys are nnU-Net's plus ``cbam.*``, ``at.*`` or
``mat.*``.

Constructor: dynamic-network-architectures' ``PlainConvUNet`` keyword arguments, ``patch_size``, and the block's
options with its prefix (``CBAMBlockOptions`` / ``ATBlockOptions`` / ``MATBlockOptions`` keywords), so one registry
entry (``nnunet-cbam``, ``nnunet-at``, ``nnunet-mat``) or an nnU-Net plans file (``network_class_name``) builds them.

Parameters at the paper's BTCV plan, added to nnU-Net (v2: 30,758,214; v1, the network Table 4 counted:
30,978,528 = 29.54 Mi), against Table 4 (units of 2^20):

=====  ==========  ======================  ===============  ====================================================
block  added       v1 + block              Table 4          the open design detail that sets the count
=====  ==========  ======================  ===============  ====================================================
CBAM   26,648      29.5688 -> 29.57        29.57            MLP reduction r = 8 (CBAM's default 16: 29.56)
AT     3           29.5434 -> 29.54        29.54            no learned Q/K/V maps (with them: +1.18 Mi, 30.72)
MAT    849,310     30.3534 -> 30.35        30.35            1 head, width C (8 heads: 30.34)
GASA   1,058,891   30.5533 -> 30.55        30.55            none (the official code adds an unused 50-parameter
                                                            norm: 1,058,941)
=====  ==========  ======================  ===============  ====================================================

MACs (thop's rules) added at that plan: CBAM 0.0002 G, AT 0 (functional attention products), MAT 0.181 G (Table 4:
662.9 G for all three; for MAT see :mod:`GASACore.network.medical_axial` on why thop missed 0.133 G of it).

Layout: input ``(N, C_in, X, Y, Z)`` of exactly ``patch_size``; logits ``(N, K, X, Y, Z)`` or, with deep
supervision, the list of decoder outputs, full resolution first.
"""

from __future__ import annotations

from typing import Any

import torch

from GASACore.network.axial_attention import AxialSelfAttention3d
from GASACore.network.block_options import ATBlockOptions, CBAMBlockOptions, MATBlockOptions
from GASACore.network.cbam import CBAM3d
from GASACore.network.medical_axial import MedicalAxialBlock3d
from GASACore.network.plans import bottleneck_size
from GASACore.network.unets import FixedPatchPlainConvUNet

__all__ = ["ATPlainConvUNet", "CBAMPlainConvUNet", "MATPlainConvUNet"]


class CBAMPlainConvUNet(FixedPatchPlainConvUNet):
    """nnU-Net + CBAM at the bottleneck (``cbam_reduction`` 8, ``cbam_spatial_kernel`` 7: ``CBAMBlockOptions``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = CBAMBlockOptions.pop_network_kwargs(kwargs)
        super().__init__(*args, **kwargs)
        self.cbam = CBAM3d(
            channels=self.encoder.output_channels[-1],
            reduction=options.reduction,
            spatial_kernel=options.spatial_kernel,
        )

    def _bottleneck(self, features: torch.Tensor) -> torch.Tensor:
        return self.cbam(features)


class ATPlainConvUNet(FixedPatchPlainConvUNet):
    """nnU-Net + axial self-attention along X, Y, Z at the bottleneck (``at_heads`` 8, ``at_projections`` False)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = ATBlockOptions.pop_network_kwargs(kwargs)
        super().__init__(*args, **kwargs)
        self.at = AxialSelfAttention3d(
            channels=self.encoder.output_channels[-1], heads=options.heads, projections=options.projections
        )

    def _bottleneck(self, features: torch.Tensor) -> torch.Tensor:
        return self.at(features)


class MATPlainConvUNet(FixedPatchPlainConvUNet):
    """nnU-Net + the medical axial transformer block at the bottleneck (``mat_heads`` 1).

    Raises:
        ValueError: The plan's bottleneck is not cubic (MAT cannot take asymmetric features).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = MATBlockOptions.pop_network_kwargs(kwargs)
        super().__init__(*args, **kwargs)
        self.mat = MedicalAxialBlock3d(
            channels=self.encoder.output_channels[-1],
            spatial_size=bottleneck_size(self.patch_size, self.encoder.strides),
            heads=options.heads,
        )

    def _bottleneck(self, features: torch.Tensor) -> torch.Tensor:
        return self.mat(features)
