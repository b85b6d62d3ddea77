"""Network plans: the U-Net topology a network is built for.

A plan fixes the patch size (nnU-Net array order ``(X, Y, Z)`` after its transpose, in voxels), the
per-stage strides, kernel sizes and feature counts. The GASA block is built for one bottleneck size,
``patch_size / prod(strides)``, so a plan also fixes the input size a GASA network accepts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["NAMED_PLANS", "PAPER_BTCV", "UNetPlan", "bottleneck_size"]

Triple = tuple[int, int, int]


def _triple_tuple(values: Sequence[Sequence[int]] | Sequence[int], what: str) -> tuple[Triple, ...]:
    result = []
    for value in values:
        if isinstance(value, int):
            value = (value, value, value)
        value = tuple(int(v) for v in value)
        if len(value) != 3:
            raise ValueError(f"each entry of {what} must have 3 values (X, Y, Z), got {value!r}")
        result.append(value)
    return tuple(result)  # type: ignore[return-value]


def _total_stride(strides: Sequence[Sequence[int]] | Sequence[int]) -> Triple:
    triples = _triple_tuple(strides, "strides")
    return tuple(math.prod(s[axis] for s in triples) for axis in range(3))  # type: ignore[return-value]


def bottleneck_size(patch_size: Sequence[int], strides: Sequence[Sequence[int]] | Sequence[int]) -> Triple:
    """Spatial size ``(X, Y, Z)`` of a U-Net's bottleneck: ``patch_size / prod(strides)`` per axis, in voxels.

    Examples:
        >>> bottleneck_size((48, 192, 192), [(1, 1, 1), (1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2)])
        (6, 6, 6)
        >>> bottleneck_size((16, 20, 24), [1, 2, 2])
        (4, 5, 6)

    Raises:
        ValueError: the patch is not 3 positive multiples of the total stride (a bottleneck under 1 voxel).
    """
    total = _total_stride(strides)
    patch = tuple(int(p) for p in patch_size)
    if len(patch) != 3 or any(p < 1 or p % t for p, t in zip(patch, total, strict=True)):
        raise ValueError(
            f"patch_size must be 3 positive multiples of the total stride {total} so the bottleneck is at least "
            f"1 voxel, got {tuple(patch_size)}"
        )
    return tuple(p // t for p, t in zip(patch, total, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True)
class UNetPlan:
    """Topology of a 3D U-Net as nnU-Net v2 plans it.

    Attributes:
        patch_size: window size in voxels, ``(X, Y, Z)`` in nnU-Net's transposed array order.
        strides: per-stage downsampling strides; the first stage usually has ``(1, 1, 1)``.
        kernel_sizes: per-stage convolution kernel sizes.
        features_per_stage: output channels of each encoder stage.
        n_conv_per_stage: convolutions per encoder stage (PlainConvUNet).
        n_conv_per_stage_decoder: convolutions per decoder stage (PlainConvUNet), one fewer entries.
        n_blocks_per_stage: residual blocks per encoder stage (ResidualEncoderUNet).
        n_conv_per_stage_decoder_resenc: convolutions per decoder stage of the ResEnc U-Net.
    """

    patch_size: Triple
    strides: tuple[Triple, ...]
    kernel_sizes: tuple[Triple, ...]
    features_per_stage: tuple[int, ...]
    n_conv_per_stage: tuple[int, ...] = field(default=())
    n_conv_per_stage_decoder: tuple[int, ...] = field(default=())
    n_blocks_per_stage: tuple[int, ...] = field(default=())
    n_conv_per_stage_decoder_resenc: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        patch = tuple(int(p) for p in self.patch_size)
        if len(patch) != 3 or any(p <= 0 for p in patch):
            raise ValueError(f"patch_size must be 3 positive integers (X, Y, Z), got {self.patch_size!r}")
        strides = _triple_tuple(self.strides, "strides")
        kernels = _triple_tuple(self.kernel_sizes, "kernel_sizes")
        features = tuple(int(f) for f in self.features_per_stage)
        n_stages = len(features)
        if n_stages < 2:
            raise ValueError(f"a U-Net needs at least 2 stages, got features_per_stage={features!r}")
        if len(strides) != n_stages or len(kernels) != n_stages:
            raise ValueError(
                f"strides and kernel_sizes must have one entry per stage ({n_stages}), "
                f"got {len(strides)} strides and {len(kernels)} kernel sizes"
            )
        if (
            any(f <= 0 for f in features)
            or any(s <= 0 for t in strides for s in t)
            or any(k <= 0 for t in kernels for k in t)
        ):
            raise ValueError(
                "features_per_stage, strides and kernel_sizes must be positive, "
                f"got features={features!r}, strides={strides!r}, kernels={kernels!r}"
            )
        n_conv = tuple(self.n_conv_per_stage) or (2,) * n_stages
        n_conv_dec = tuple(self.n_conv_per_stage_decoder) or (2,) * (n_stages - 1)
        n_blocks = tuple(self.n_blocks_per_stage) or (1,) * n_stages
        n_conv_dec_res = tuple(self.n_conv_per_stage_decoder_resenc) or (1,) * (n_stages - 1)
        for name, values, expected in (
            ("n_conv_per_stage", n_conv, n_stages),
            ("n_conv_per_stage_decoder", n_conv_dec, n_stages - 1),
            ("n_blocks_per_stage", n_blocks, n_stages),
            ("n_conv_per_stage_decoder_resenc", n_conv_dec_res, n_stages - 1),
        ):
            if len(values) != expected or any(int(v) <= 0 for v in values):
                raise ValueError(f"{name} must be {expected} positive integers, got {values!r}")
        object.__setattr__(self, "patch_size", patch)
        object.__setattr__(self, "strides", strides)
        object.__setattr__(self, "kernel_sizes", kernels)
        object.__setattr__(self, "features_per_stage", features)
        object.__setattr__(self, "n_conv_per_stage", tuple(int(v) for v in n_conv))
        object.__setattr__(self, "n_conv_per_stage_decoder", tuple(int(v) for v in n_conv_dec))
        object.__setattr__(self, "n_blocks_per_stage", tuple(int(v) for v in n_blocks))
        object.__setattr__(self, "n_conv_per_stage_decoder_resenc", tuple(int(v) for v in n_conv_dec_res))

    @property
    def n_stages(self) -> int:
        return len(self.features_per_stage)

    @property
    def total_stride(self) -> Triple:
        """Product of all strides per axis: how much the bottleneck is smaller than the patch."""
        return _total_stride(self.strides)

    @property
    def bottleneck_size(self) -> Triple:
        """Spatial size ``(X, Y, Z)`` of the bottleneck feature map, in voxels (see :func:`bottleneck_size`)."""
        return bottleneck_size(self.patch_size, self.strides)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary (lists instead of tuples)."""
        return {key: _listify(value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UNetPlan:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown plan fields {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**{key: _tuplify(value) for key, value in data.items()})


def _listify(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_listify(v) for v in value]
    return value


def _tuplify(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_tuplify(v) for v in value)
    return value


#: The paper's BTCV plan: patch 48x192x192, 6 stages, bottleneck 6x6x6 (design/gasa-block.md).
PAPER_BTCV = UNetPlan(
    patch_size=(48, 192, 192),
    strides=((1, 1, 1), (1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(32, 64, 128, 256, 320, 320),
    n_conv_per_stage=(2, 2, 2, 2, 2, 2),
    n_conv_per_stage_decoder=(2, 2, 2, 2, 2),
    n_blocks_per_stage=(3, 3, 3, 3, 3, 5),
    n_conv_per_stage_decoder_resenc=(1, 1, 1, 1, 1),
)

#: Plans chosen by name instead of nnU-Net's planner (``gasa-train plan --plan NAME``).
NAMED_PLANS: Mapping[str, UNetPlan] = {"paper-btcv": PAPER_BTCV}
