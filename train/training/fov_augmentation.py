"""Partial fields of view: training patches that show only a slab of the body, as short scans do.

Clinical scans often cover part of the abdomen (a 4 cm slab through the kidneys, a liver-only series, an
in-plane field of view narrower than the patient). At inference such a scan is padded to the patch size, so
the network sees a few slices of anatomy between blocks of padding. :class:`PartialFieldOfViewTransform`
imitates that on training patches: it keeps a random slab along one axis and sets the rest to the padding
value (image) and background (labels, which inference crops away anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform

__all__ = ["PartialFieldOfViewTransform", "slab_bounds"]


def slab_bounds(length: int, min_fraction: float, rng: np.random.Generator) -> tuple[int, int]:
    """A random ``[start, stop)`` of at least ``min_fraction * length`` voxels inside ``range(length)``.

    >>> start, stop = slab_bounds(64, 0.25, np.random.default_rng(0))
    >>> 0 <= start < stop <= 64 and stop - start >= 16
    True
    """
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    shortest = max(1, int(np.ceil(min_fraction * length)))
    size = int(rng.integers(shortest, length + 1))
    start = int(rng.integers(0, length - size + 1))
    return start, start + size


class PartialFieldOfViewTransform(BasicTransform):
    """Keeps one random slab of a patch (image ``(C, X, Y, Z)``, seg ``(1, X, Y, Z)``); the rest is padding.

    Args:
        axes: spatial axes (0 = the first after the channel) to cut along, one drawn per patch with
            ``axis_weights``; the first is the slice axis of nnU-Net's pre-processed CT.
        axis_weights: relative odds of each axis.
        min_fraction: the shortest slab kept, as a share of the patch.
        padding_value: what the image holds outside the slab (nnU-Net pads normalised images with 0).
    """

    def __init__(
        self,
        axes: Sequence[int] = (0, 1, 2),
        axis_weights: Sequence[float] = (0.7, 0.15, 0.15),
        min_fraction: float = 0.15,
        padding_value: float = 0.0,
    ) -> None:
        super().__init__()
        if len(axes) != len(axis_weights) or not axes:
            raise ValueError(f"one weight per axis expected, got axes {list(axes)} and weights {list(axis_weights)}")
        weights = np.asarray(axis_weights, dtype=float)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"axis weights must be >= 0 with a positive sum, got {list(axis_weights)}")
        slab_bounds(8, min_fraction, np.random.default_rng(0))  # validates min_fraction
        self.axes = tuple(int(a) for a in axes)
        self.axis_weights = weights / weights.sum()
        self.min_fraction = float(min_fraction)
        self.padding_value = float(padding_value)

    def get_parameters(self, **data_dict: torch.Tensor) -> dict:
        rng = np.random.default_rng(np.random.randint(2**31))
        axis = self.axes[int(rng.choice(len(self.axes), p=self.axis_weights))]
        start, stop = slab_bounds(int(data_dict["image"].shape[axis + 1]), self.min_fraction, rng)
        return {"axis": axis, "start": start, "stop": stop}

    def apply(self, data_dict: dict, **params: int) -> dict:
        axis, start, stop = params["axis"], params["start"], params["stop"]
        for key, value in (("image", self.padding_value), ("segmentation", 0)):
            tensor = data_dict.get(key)
            if tensor is None:
                continue
            outside = torch.ones(tensor.shape[axis + 1], dtype=torch.bool)
            outside[start:stop] = False
            index = [slice(None)] * tensor.ndim
            index[axis + 1] = outside
            tensor[tuple(index)] = value
        return data_dict
