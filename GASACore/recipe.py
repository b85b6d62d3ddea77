"""How one model runs: the stage settings a publisher's recipe changes (torch-free).

The pipeline (:func:`GASACore.segment`) has one set of stages: orientation, resampling, nnU-Net
pre-processing, sliding-window prediction, the way back. A :class:`RunRecipe` configures them for a
model whose publisher runs it differently from plain nnU-Net; TotalSegmentator's recipe
(:func:`GASACore.models.recipes.load_entry_model` builds it from a catalogue entry) sets

* ``orientation="RAS"``: the closest canonical orientation, as nibabel's ``as_closest_canonical``;
* ``resample_order``: resample to the model's spacing with ``scipy.ndimage.zoom`` of that order before
  nnU-Net (whose own resampling then has nothing to do) and back with order 0
  (:mod:`GASACore.preprocessing.totalseg`);
* ``step_size`` and ``mirroring``;
* ``crop``: a low-resolution model runs first, and the model runs on the bounding box of some of its
  classes plus a margin, its labels pasted back into an empty map;
* ``value_map``: the model's label values renamed to the entry's (TotalSegmentator's numbering), values
  not listed dropped (its auxiliary labels);
* ``parts`` (composite models): other models run in turn on the same image, each through its own
  recipe and ``value_map``, a later part's non-zero labels overwriting an earlier one's
  (:func:`merge_into`), as TotalSegmentator merges its parts; the composite's ``value_map`` then keeps
  the classes it lists.

Examples:
    >>> import numpy as np
    >>> remap_labels(np.array([0, 1, 2, 3, 4]), ((1, 23), (2, 24)))  # 3 and 4 are not listed: dropped
    array([ 0, 23, 24,  0,  0], dtype=uint8)
    >>> merged = np.array([0, 5, 5, 0], dtype=np.uint8)
    >>> merge_into(merged, np.array([0, 0, 52, 52], dtype=np.uint8)).tolist()  # the later part wins
    [0, 5, 52, 52]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from GASACore.bundle.model import ModelBundle

__all__ = ["CropPass", "RunRecipe", "label_dtype", "merge_into", "remap_labels"]


@dataclass(frozen=True)
class CropPass:
    """A pre-pass: ``model`` segments the whole image; the run is cropped to its ``values`` plus ``margin_mm``.

    ``model`` carries its own recipe (TotalSegmentator runs its 6 mm model with the same recipe).
    """

    model: ModelBundle
    values: tuple[int, ...]
    margin_mm: float


@dataclass(frozen=True)
class RunRecipe:
    """Stage settings for one model; ``None`` fields leave the engine's default.

    Attributes:
        name: the catalogue recipe (``nnunet``, ``totalsegmentator``).
        orientation: ITK orientation code the input is re-oriented to (losslessly) before the run.
        resample_order: spline order of the resampling to the model's spacing before nnU-Net
            (TotalSegmentator's); ``None``: nnU-Net's own resampling.
        intensity_dtype: what the resampled image is cast to (``int32`` truncates, as TotalSegmentator).
        step_size: sliding-window step (fraction of the patch).
        mirroring: ``False`` turns mirroring off whatever the options say.
        crop: the crop pre-pass, or ``None``.
        value_map: ``(model value, output value)`` pairs; others become background. ``None``: as the model paints.
            For a composite: applied to the merged parts.
        parts: composite models: the part models run in order and merged; then this model's own network is
            not run.
    """

    name: str = "nnunet"
    orientation: str | None = None
    resample_order: int | None = None
    intensity_dtype: str | None = "int32"
    step_size: float | None = None
    mirroring: bool | None = None
    crop: CropPass | None = None
    value_map: tuple[tuple[int, int], ...] | None = None
    parts: tuple[ModelBundle, ...] = ()


def label_dtype(highest: int) -> type:
    """uint8 up to 255 labels, uint16 above."""
    return np.uint8 if highest <= 255 else np.uint16


def remap_labels(labels: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """``labels`` with each ``source`` value replaced by its ``target``; values not listed become 0."""
    highest_in = int(labels.max(initial=0))
    lut = np.zeros(
        max(highest_in, *(s for s, _ in pairs), 0) + 1, dtype=label_dtype(max((t for _, t in pairs), default=0))
    )
    for source, target in pairs:
        lut[int(source)] = int(target)
    return lut[labels]


def merge_into(merged: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Write ``part``'s non-zero labels over ``merged`` (in place; returned)."""
    if merged.shape != part.shape:
        raise ValueError(f"parts must have the same shape to be merged, got {merged.shape} and {part.shape}")
    np.copyto(merged, part.astype(merged.dtype, copy=False), where=part != 0)
    return merged
