"""Topologies: what kind of encoder-decoder a registered network is, and so which keywords its class takes.

* ``nnunet-unet``: a dynamic-network-architectures U-Net (``PlainConvUNet`` / ``ResidualEncoderUNet``) built from
  the plan's stages, strides, kernels and features (nnU-Net's planner decides them). It has deep supervision.
* ``monai-vnet``, ``monai-unetr``, ``nnmamba``: a backbone with its own published topology
  (:mod:`GASACore.network.backbones`). Only the plan's patch size is the network's; the rest of its plan is the
  backbone's fixed topology (:meth:`Topology.plan_for`), written into plans and bundles so that they describe
  the network that is built. These backbones have one output (no deep supervision).

Plain data: no torch import. The backbone classes read their strides from here, so each fixed topology is stated
once.

Examples:
    >>> Topology.MONAI_VNET.plan_for((48, 192, 192)).bottleneck_size
    (3, 12, 12)
    >>> Topology.NNMAMBA.fit_patch((28, 28, 40))
    (32, 32, 48)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from GASACore.enums import StrEnum
from GASACore.network.plans import UNetPlan

__all__ = ["FixedTopology", "Topology"]

Triple = tuple[int, int, int]

_STRIDES_16: tuple[Triple, ...] = ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2))


@dataclass(frozen=True)
class FixedTopology:
    """The published topology of a backbone: per encoder output, its stride, kernel and channels."""

    strides: tuple[Triple, ...]
    kernel_sizes: tuple[Triple, ...]
    features_per_stage: tuple[int, ...]

    @property
    def total_stride(self) -> Triple:
        total = [1, 1, 1]
        for stride in self.strides:
            total = [t * s for t, s in zip(total, stride, strict=True)]
        return (total[0], total[1], total[2])


class Topology(StrEnum):
    """Which kind of network a registry entry builds (see the module docstring)."""

    NNUNET_UNET = "nnunet-unet"  #: dynamic-network-architectures U-Net, topology from the plan
    MONAI_VNET = "monai-vnet"  #: MONAI's V-Net (Milletari et al. 2016)
    MONAI_UNETR = "monai-unetr"  #: MONAI's UNETR (Hatamizadeh et al. 2022)
    NNMAMBA = "nnmamba"  #: nnMamba (Gong et al. 2024)

    @property
    def follows_plan(self) -> bool:
        """Whether the network is built from the plan's stages (nnU-Net U-Nets) rather than a fixed topology."""
        return self is Topology.NNUNET_UNET

    @property
    def requires_cuda(self) -> bool:
        """Whether the network's kernels exist on CUDA only (nnMamba's Mamba layers: mamba_ssm)."""
        return self is Topology.NNMAMBA

    @property
    def deep_supervision(self) -> bool:
        """Whether the network has deep-supervision outputs (train the others with deep supervision off)."""
        return self is Topology.NNUNET_UNET

    @property
    def fixed(self) -> FixedTopology:
        """The backbone's own topology.

        Raises:
            ValueError: for ``nnunet-unet``, whose topology is the plan's.
        """
        if self.follows_plan:
            raise ValueError(f"topology {self.value!r} has no fixed topology: its plan decides the stages")
        return _FIXED[self]

    def fit_patch(self, patch_size: Sequence[int]) -> Triple:
        """The nearest patch the network takes: each side a multiple of the total stride (halves up, at least one).

        ``nnunet-unet`` networks take the plan's patch as it is.
        """
        patch = tuple(int(p) for p in patch_size)
        if self.follows_plan:
            return (patch[0], patch[1], patch[2])
        total = self.fixed.total_stride
        fitted = [max(t, t * ((p + t // 2) // t)) for p, t in zip(patch, total, strict=True)]
        return (fitted[0], fitted[1], fitted[2])

    def plan_for(self, patch_size: Sequence[int]) -> UNetPlan:
        """The plan of a fixed-topology network for ``patch_size`` (its strides, kernels and channels).

        Raises:
            ValueError: ``nnunet-unet`` (no fixed topology).
        """
        fixed = self.fixed
        return UNetPlan(
            patch_size=tuple(int(p) for p in patch_size),  # type: ignore[arg-type]
            strides=fixed.strides,
            kernel_sizes=fixed.kernel_sizes,
            features_per_stage=fixed.features_per_stage,
        )

    def check_plan(self, plan: UNetPlan, network: str) -> None:
        """Refuse a plan a network of this topology cannot be built for.

        ``nnunet-unet``: the bottleneck must be at least one voxel. Fixed topologies: the plan must be the
        backbone's own at its patch size, and the patch a multiple of its total stride.

        Raises:
            ValueError: what was expected and what was given.
        """
        if self.follows_plan:
            plan.bottleneck_size  # noqa: B018 - raises for a patch that is no multiple of the total stride
            return
        fitted = self.fit_patch(plan.patch_size)
        if fitted != plan.patch_size:
            raise ValueError(
                f"{network} ({self.value}) needs a patch size that is a multiple of {self.fixed.total_stride} per "
                f"axis, got {plan.patch_size} (nearest: {fitted})"
            )
        expected = self.plan_for(plan.patch_size)
        if plan != expected:
            raise ValueError(
                f"{network} ({self.value}) has a fixed topology: expected its plan (strides {list(expected.strides)}, "
                f"features {list(expected.features_per_stage)}), got strides {list(plan.strides)}, features "
                f"{list(plan.features_per_stage)}"
            )


_FIXED: dict[Topology, FixedTopology] = {
    # MONAI V-Net: input transition (16 ch, 5^3 convs) and four down transitions (stride 2), 32 .. 256 channels.
    Topology.MONAI_VNET: FixedTopology(_STRIDES_16, ((5, 5, 5),) * 5, (16, 32, 64, 128, 256)),
    # MONAI UNETR (feature size 16, hidden 768): encoder blocks 16 .. 128 channels, the ViT's 768 on 16^3 patches.
    Topology.MONAI_UNETR: FixedTopology(_STRIDES_16, ((3, 3, 3),) * 5, (16, 32, 64, 128, 768)),
    # nnMamba: stem (stride 2) and three residual layers (stride 2), 32 .. 256 channels.
    Topology.NNMAMBA: FixedTopology(((2, 2, 2),) * 4, ((3, 3, 3),) * 4, (32, 64, 128, 256)),
}
