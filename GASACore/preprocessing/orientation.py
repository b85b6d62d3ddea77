"""Lossless re-orientation of ``(z, y, x)`` arrays to a model's training orientation, and back.

nnU-Net feeds the voxel array as stored, whatever the image's direction; a model trained with mirror
augmentation tolerates that, one trained without it (as TotalSegmentator's and the demo model are, because
organs have sides) does not: an LPS DICOM series given to a model trained on RAS NIfTI arrives mirrored in
two axes. A bundle that records ``inference.orientation`` (an ITK orientation code such as ``"RAS"``, the
training images' orientation) gets its input permuted and flipped to that orientation (no resampling), and
the label map comes back to the input's own voxel grid exactly.

Example (the sample CT is stored RAS; a DICOM series is LPS)::

    >>> orientation_code((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    'RAS'
    >>> alignment = axis_alignment((1, 0, 0, 0, 1, 0, 0, 0, 1), "RAS")
    >>> alignment.permutation, alignment.flips
    ((0, 1, 2), (True, True, False))
    >>> import numpy as np
    >>> volume = np.arange(24).reshape(2, 3, 4)  # (z, y, x)
    >>> bool((alignment.restore(alignment.apply(volume)) == volume).all())
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from GASACore.errors import UnsupportedGeometryError

__all__ = ["AxisAlignment", "axis_alignment", "check_orientation_code", "orientation_code"]


def check_orientation_code(code: str) -> str:
    """``code`` upper-cased when it is a 3-letter ITK orientation code (one of R/L, A/P, S/I each).

    >>> check_orientation_code("ras"), check_orientation_code("PIR")
    ('RAS', 'PIR')
    """
    upper = str(code).upper()
    axes = sorted("RLAPSI".find(letter) // 2 for letter in upper if letter in "RLAPSI")
    if len(upper) != 3 or axes != [0, 1, 2]:
        raise ValueError(f"orientation must be 3 letters with one of R/L, A/P and S/I each (e.g. RAS), got {code!r}")
    return upper


def orientation_code(direction: Sequence[float]) -> str:
    """The ITK orientation code of a direction matrix (9 values, row-major, columns = index axes)."""
    import SimpleITK as sitk  # lazily: bundles check orientation codes without SimpleITK (torch-free describe)

    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines([float(v) for v in direction])


@dataclass(frozen=True)
class AxisAlignment:
    """Index axis ``k`` of the target orientation is source index axis ``permutation[k]``, reversed if ``flips[k]``.

    Index axes are ITK's (i, j, k) = (x, y, z); arrays are ``(z, y, x)``.
    """

    permutation: tuple[int, int, int]
    flips: tuple[bool, bool, bool]

    @property
    def identity(self) -> bool:
        return self.permutation == (0, 1, 2) and not any(self.flips)

    def apply(self, array: np.ndarray) -> np.ndarray:
        """A ``(z, y, x)`` (or ``(C, z, y, x)``) array in the target orientation (a view where possible)."""
        lead = array.ndim - 3
        index_order = array.transpose(*range(lead), *(lead + 2 - a for a in range(3)))  # (..., i, j, k)
        aligned = index_order.transpose(*range(lead), *(lead + p for p in self.permutation))
        for axis, flip in enumerate(self.flips):
            if flip:
                aligned = np.flip(aligned, axis=lead + axis)
        return aligned.transpose(*range(lead), *(lead + 2 - a for a in range(3)))

    def restore(self, array: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`apply`: back to the source's ``(z, y, x)`` voxel grid."""
        lead = array.ndim - 3
        index_order = array.transpose(*range(lead), *(lead + 2 - a for a in range(3)))
        for axis, flip in enumerate(self.flips):
            if flip:
                index_order = np.flip(index_order, axis=lead + axis)
        inverse = np.argsort(self.permutation)
        source = index_order.transpose(*range(lead), *(lead + int(p) for p in inverse))
        return source.transpose(*range(lead), *(lead + 2 - a for a in range(3)))

    def spacing_zyx(self, spacing_zyx: Sequence[float]) -> tuple[float, float, float]:
        """The ``(z, y, x)`` spacing of the aligned array."""
        ijk = list(reversed([float(s) for s in spacing_zyx]))
        aligned = [ijk[p] for p in self.permutation]
        return (aligned[2], aligned[1], aligned[0])


def axis_alignment(direction: Sequence[float], target: str) -> AxisAlignment:
    """How to permute and flip an image with ``direction`` so that its axes follow ``target`` (e.g. ``"RAS"``).

    Raises:
        UnsupportedGeometryError: an axis lies halfway between two target axes (45 degrees oblique), so
            no permutation is closest.
    """
    import SimpleITK as sitk

    source = np.reshape(np.asarray(direction, dtype=float), (3, 3))
    wanted = np.reshape(
        sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation(check_orientation_code(target)), (3, 3)
    )
    dots = wanted.T @ source  # dots[k, j]: target axis k . source axis j
    permutation = tuple(int(np.argmax(np.abs(dots[k]))) for k in range(3))
    if sorted(permutation) != [0, 1, 2]:
        raise UnsupportedGeometryError(
            f"cannot align the image's axes (direction {np.round(source, 3).tolist()}) with the model's "
            f"orientation {target}: an axis lies between two of its axes"
        )
    flips = tuple(bool(dots[k, permutation[k]] < 0) for k in range(3))
    return AxisAlignment(permutation, flips)  # type: ignore[arg-type]
