"""Plans and a builder shared by the network tests (imported by them; not a conftest, whose name would clash)."""

from __future__ import annotations

from typing import Any

import torch

from GASACore.network import UNetPlan, network_arch_kwargs, resolve_operations

#: A 4-stage plan small enough for CPU forward passes; bottleneck 2 x 2 x 2 (cubic, so MAT takes it).
SMALL = UNetPlan(
    patch_size=(8, 16, 16),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(8, 16, 16, 16),
)

#: Bottleneck 4 x 5 x 6: asymmetric, as AMOS plans are.
ASYMMETRIC = UNetPlan(
    patch_size=(16, 20, 24),
    strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((3, 3, 3),) * 3,
    features_per_stage=(8, 16, 16),
)


def build(cls: type, plan: UNetPlan, *, num_classes: int = 14, meta: bool = False, **options: Any) -> torch.nn.Module:
    """``cls`` built as nnU-Net v2 would from ``plan`` (its PlainConvUNet keywords + ``patch_size``)."""
    kwargs = resolve_operations(network_arch_kwargs("nnunet", plan))
    arguments = {"input_channels": 1, "num_classes": num_classes, "deep_supervision": False, **kwargs, **options}
    if meta:
        with torch.device("meta"):
            return cls(patch_size=plan.patch_size, **arguments)
    torch.manual_seed(0)
    network = cls(patch_size=plan.patch_size, **arguments)
    network.apply(cls.initialize)
    return network


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
