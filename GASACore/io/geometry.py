"""The geometry of a 3D image: size, spacing, origin and direction, as SimpleITK reports them.

Everything here is in SimpleITK's (x, y, z) order and in LPS world coordinates (millimetres). Numpy arrays
of the same image are (z, y, x): use :attr:`Geometry.shape_zyx` and :attr:`Geometry.spacing_zyx` for them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

__all__ = ["Geometry"]


def _floats(name: str, values: Sequence[float], count: int) -> tuple[float, ...]:
    try:
        result = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Geometry.{name} must be {count} numbers, got {values!r}") from err
    if len(result) != count or not all(math.isfinite(v) for v in result):
        raise ValueError(f"Geometry.{name} must be {count} finite numbers, got {values!r}")
    return result


def _sizes(values: Sequence[int]) -> tuple[int, int, int]:
    try:
        result = tuple(int(v) for v in values)
        integral = all(float(v) == int(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Geometry.size must be 3 positive integers (x, y, z), got {values!r}") from err
    if len(result) != 3 or not integral or any(v < 1 for v in result):
        raise ValueError(f"Geometry.size must be 3 positive integers (x, y, z), got {values!r}")
    return result  # type: ignore[return-value]


@dataclass(frozen=True)
class Geometry:
    """Where the voxels of a 3D image lie in the world, as SimpleITK describes it.

    Attributes:
        size: number of voxels along x, y, z (``image.GetSize()``); numpy shape is the reverse.
        spacing: voxel size in mm along x, y, z (``image.GetSpacing()``), all > 0.
        origin: world position (LPS, mm) of the centre of voxel (0, 0, 0) (``image.GetOrigin()``).
        direction: the 3x3 direction cosine matrix, 9 values row-major (``image.GetDirection()``);
            column j is the LPS direction of index axis j.

    Raises:
        ValueError: a field has the wrong length, a non-finite value, a size < 1 or a spacing <= 0.
    """

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    def __post_init__(self) -> None:
        spacing = _floats("spacing", self.spacing, 3)
        if any(s <= 0 for s in spacing):
            raise ValueError(f"Geometry.spacing must be 3 positive values in mm (x, y, z), got {self.spacing!r}")
        direction = _floats("direction", self.direction, 9)
        if abs(float(np.linalg.det(np.reshape(direction, (3, 3))))) < 1e-6:
            raise ValueError(f"Geometry.direction must be an invertible 3x3 matrix (9 values), got {direction!r}")
        object.__setattr__(self, "size", _sizes(self.size))
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", _floats("origin", self.origin, 3))
        object.__setattr__(self, "direction", direction)

    @classmethod
    def from_sitk(cls, image: sitk.Image) -> Geometry:
        """Geometry of a 3D SimpleITK image.

        Raises:
            ValueError: the image is not 3D.
        """
        if image.GetDimension() != 3:
            dimension, size = image.GetDimension(), image.GetSize()
            raise ValueError(f"Geometry needs a 3D image, got a {dimension}D image of size {size}")
        return cls(
            size=image.GetSize(),  # type: ignore[arg-type]
            spacing=image.GetSpacing(),  # type: ignore[arg-type]
            origin=image.GetOrigin(),  # type: ignore[arg-type]
            direction=image.GetDirection(),
        )

    def apply_to(self, image: sitk.Image) -> None:
        """Set spacing, origin and direction of ``image`` (in place) to this geometry.

        Raises:
            ValueError: the image's size (x, y, z) differs from :attr:`size`.
        """
        if tuple(image.GetSize()) != self.size:
            raise ValueError(
                f"image size (x, y, z) must equal the geometry's {self.size}, got {tuple(image.GetSize())}"
            )
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Numpy shape (z, y, x) of an array on this grid."""
        x, y, z = self.size
        return (z, y, x)

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Voxel size in mm in numpy order (z, y, x)."""
        x, y, z = self.spacing
        return (z, y, x)

    @property
    def orientation(self) -> str:
        """Closest axis-aligned orientation, e.g. ``"LPS"`` or ``"RAS"`` (ITK's code: where each axis points to)."""
        return str(sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(self.direction))

    def is_close(self, other: Geometry, atol: float = 1e-4) -> bool:
        """True when sizes are equal and spacing, origin and direction agree within ``atol`` (mm, or unitless)."""
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, rtol=0.0, atol=atol)
            and np.allclose(self.origin, other.origin, rtol=0.0, atol=atol)
            and np.allclose(self.direction, other.direction, rtol=0.0, atol=atol)
        )

    def to_json(self) -> dict[str, list[float] | list[int]]:
        """JSON-ready dict with lists for ``size``, ``spacing``, ``origin`` and ``direction``."""
        return {
            "size": list(self.size),
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": list(self.direction),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Geometry:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: a key is missing or a value is invalid.
        """
        missing = [key for key in ("size", "spacing", "origin", "direction") if key not in data]
        if missing:
            expected = "size, spacing, origin, direction"
            raise ValueError(f"a geometry needs the keys {expected}; missing {missing} in {dict(data)!r}")
        return cls(size=data["size"], spacing=data["spacing"], origin=data["origin"], direction=data["direction"])
