"""Image helpers for the engine tests (a module of its own: test files import it by name, never ``conftest``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

__all__ = ["reoriented"]


def reoriented(source: Path, target: Path, direction: tuple[float, ...]) -> Path:
    """Copy of ``source`` with the same voxels and another direction matrix (and a moved origin)."""
    image = sitk.ReadImage(str(source))
    image.SetDirection(direction)
    image.SetOrigin(tuple(np.asarray(image.GetOrigin()) + np.array([12.5, -7.25, 3.0])))
    sitk.WriteImage(image, str(target))
    return target
