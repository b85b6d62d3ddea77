"""Label-aware intensity augmentation: the HU shifts of contrast phases, painted organ by organ.

A model trained on one native (non-contrast) CT sees a liver at ~55 HU and an aorta at ~40 HU; in a portal
venous scan they are at ~110 and ~160 HU. :class:`ContrastPhaseTransform` imitates that on training patches:
it draws a phase (native, arterial, portal venous), then for each organ in the patch a shift in that phase's
range for the organ's tissue, and adds it (in normalised units: HU / the data set's CT std) where the
segmentation holds the organ. Organs are matched to tissues by name (:func:`tissue_of`), so it works for any
label set whose names say what they are.

Ranges (HU added to native) are rounded from typical enhancement in abdominal CT protocols; they are wide on
purpose: scanners, timing and patients differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform

__all__ = ["PHASES", "ContrastPhaseTransform", "shifts_by_label", "tissue_of"]

#: Tissue -> (low, high) HU shift per phase. ``native`` jitters only (scanner calibration).
PHASES: dict[str, dict[str, tuple[float, float]]] = {
    "native": {
        "artery": (-10, 10),
        "vein": (-10, 10),
        "portal": (-10, 10),
        "liver": (-10, 10),
        "spleen": (-10, 10),
        "pancreas": (-10, 10),
        "kidney": (-10, 10),
        "adrenal": (-10, 10),
        "hollow": (-10, 10),
        "fluid": (-5, 5),
    },
    "arterial": {
        "artery": (150, 300),
        "vein": (0, 60),
        "portal": (30, 120),
        "liver": (5, 30),
        "spleen": (40, 110),
        "pancreas": (40, 100),
        "kidney": (80, 200),
        "adrenal": (20, 60),
        "hollow": (0, 40),
        "fluid": (0, 5),
    },
    "portal_venous": {
        "artery": (80, 180),
        "vein": (60, 150),
        "portal": (100, 180),
        "liver": (40, 75),
        "spleen": (50, 90),
        "pancreas": (40, 80),
        "kidney": (100, 170),
        "adrenal": (20, 60),
        "hollow": (0, 30),
        "fluid": (0, 5),
    },
}

# Longest keyword first: "portal vein and splenic vein" is "portal", "inferior vena cava" is "vein".
_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("portal", "portal"),
    ("splenic vein", "portal"),
    ("vena cava", "vein"),
    ("ivc", "vein"),
    ("aorta", "artery"),
    ("artery", "artery"),
    ("vein", "vein"),
    ("adrenal", "adrenal"),
    ("kidney", "kidney"),
    ("liver", "liver"),
    ("spleen", "spleen"),
    ("pancreas", "pancreas"),
    ("gallbladder", "fluid"),
    ("bladder", "fluid"),
    ("stomach", "hollow"),
    ("esophagus", "hollow"),
    ("duodenum", "hollow"),
    ("bowel", "hollow"),
    ("colon", "hollow"),
)


def tissue_of(name: str) -> str | None:
    """The tissue an organ name belongs to, ``None`` for names not known here.

    >>> tissue_of("portal vein and splenic vein"), tissue_of("inferior vena cava"), tissue_of("right kidney")
    ('portal', 'vein', 'kidney')
    >>> tissue_of("femur") is None
    True
    """
    lowered = name.lower().replace("_", " ")
    for keyword, tissue in _KEYWORDS:
        if keyword in lowered:
            return tissue
    return None


def shifts_by_label(labels: Mapping[str, int | Sequence[int]]) -> dict[int, str]:
    """dataset.json ``labels`` (name -> value) -> {label value: tissue} for the organs :func:`tissue_of` knows.

    >>> shifts_by_label({"background": 0, "liver": 6, "aorta": 8, "femur": 20})
    {6: 'liver', 8: 'artery'}
    """
    tissues: dict[int, str] = {}
    for name, value in labels.items():
        tissue = tissue_of(name)
        if tissue is not None and isinstance(value, int) and value > 0:
            tissues[value] = tissue
    return tissues


class ContrastPhaseTransform(BasicTransform):
    """Adds a contrast phase's per-organ HU shifts to a patch (image ``(C, X, Y, Z)``, seg ``(1, X, Y, Z)``).

    Args:
        tissues: {label value: tissue}, from :func:`shifts_by_label`.
        hu_per_unit: HU per normalised unit (the CT normalisation's std), so shifts are added in the
            image's own units.
        phases: names of :data:`PHASES` to draw from (uniformly).
    """

    def __init__(self, tissues: Mapping[int, str], hu_per_unit: float, phases: Sequence[str] = tuple(PHASES)) -> None:
        super().__init__()
        unknown = [p for p in phases if p not in PHASES]
        if unknown:
            raise ValueError(f"unknown contrast phases {unknown}; known: {list(PHASES)}")
        if not hu_per_unit > 0:
            raise ValueError(f"hu_per_unit must be > 0, got {hu_per_unit}")
        self.tissues = dict(tissues)
        self.hu_per_unit = float(hu_per_unit)
        self.phases = tuple(phases)

    def get_parameters(self, **data_dict: torch.Tensor) -> dict:
        phase = PHASES[self.phases[np.random.randint(len(self.phases))]]
        seg = data_dict["segmentation"][0]
        present = [int(v) for v in torch.unique(seg).tolist() if int(v) in self.tissues]
        shifts = {v: float(np.random.uniform(*phase[self.tissues[v]])) / self.hu_per_unit for v in present}
        return {"shifts": shifts, "seg": seg}

    def apply(self, data_dict: dict, **params: object) -> dict:
        image: torch.Tensor = data_dict["image"]
        seg: torch.Tensor = params["seg"]  # type: ignore[assignment]
        for value, shift in params["shifts"].items():  # type: ignore[union-attr]
            image[:, seg == value] += shift
        data_dict["image"] = image
        return data_dict
