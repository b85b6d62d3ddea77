"""What ``preprocess`` did to one case, so that its prediction can be put back on the input grid."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["PreprocessedProperties"]

_SCHEMA_VERSION = 1


def _ints(values: Sequence[Any]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class PreprocessedProperties:
    """Geometry of one case through pre-processing (nnU-Net's ``properties`` dict, typed).

    ``original_*`` are in the input's ``(z, y, x)`` order; everything else is in the transposed
    ``(X, Y, Z)`` order of the network input. Spacings in mm, shapes in voxels.

    Attributes:
        original_shape: spatial shape of the input image, ``(z, y, x)``.
        original_spacing: spacing of the input image, ``(z, y, x)``.
        transpose_forward: permutation applied to ``(z, y, x)``.
        transpose_backward: its inverse.
        spacing_transposed: ``original_spacing`` permuted by ``transpose_forward``.
        shape_before_cropping: ``original_shape`` permuted by ``transpose_forward``.
        bbox: half-open ``((x0, x1), (y0, y1), (z0, z1))`` of the non-zero crop.
        shape_after_cropping: spatial shape of the crop (resampling starts here).
        target_spacing: spacing of the network input (3 values, also for 2D configurations).
        shape_after_resampling: spatial shape of the network input ``(X, Y, Z)``.
    """

    original_shape: tuple[int, int, int]
    original_spacing: tuple[float, float, float]
    transpose_forward: tuple[int, int, int]
    transpose_backward: tuple[int, int, int]
    spacing_transposed: tuple[float, float, float]
    shape_before_cropping: tuple[int, int, int]
    bbox: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    shape_after_cropping: tuple[int, int, int]
    target_spacing: tuple[float, float, float]
    shape_after_resampling: tuple[int, int, int]

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "bbox":
                value = tuple(_ints(pair) for pair in value)
                bad = len(value) != 3 or any(len(p) != 2 or p[0] < 0 or p[1] <= p[0] for p in value)
            elif "spacing" in f.name:
                value = _floats(value)
                bad = len(value) != 3 or any(not v > 0 for v in value)
            else:
                value = _ints(value)
                bad = len(value) != 3 or any(v < 0 for v in value)
            if bad:
                raise ValueError(f"{f.name} must hold 3 valid entries, got {getattr(self, f.name)!r}")
            object.__setattr__(self, f.name, value)
        crop = tuple(hi - lo for lo, hi in self.bbox)
        if crop != self.shape_after_cropping:
            raise ValueError(f"shape_after_cropping must equal the bbox size {crop}, got {self.shape_after_cropping}")

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON dictionary with ``schema_version``."""
        data: dict[str, Any] = {"schema_version": _SCHEMA_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = [list(p) for p in value] if f.name == "bbox" else list(value)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> PreprocessedProperties:
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, Mapping) or data.get("schema_version") != _SCHEMA_VERSION:
            raise ValueError(f"expected a properties object with schema_version {_SCHEMA_VERSION}, got {data!r}")
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    def to_nnunet(self) -> dict[str, Any]:
        """The keys of nnU-Net v2's ``properties`` dict that its export functions read."""
        return {
            "spacing": list(self.original_spacing),
            "shape_before_cropping": tuple(self.shape_before_cropping),
            "bbox_used_for_cropping": [list(p) for p in self.bbox],
            "shape_after_cropping_and_before_resampling": tuple(self.shape_after_cropping),
        }
