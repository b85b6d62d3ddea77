"""The Slicer self-test's expectation table (``expectedOrgans.json``), written from the demo bundle's record.

The self-test (in Slicer) and ``Testing/GASASegmenter/test_demoModel.py`` check that the bundled demo model
finds each organ it is expected to find in the bundled sample CT with a plausible volume. "Expected" and
"plausible" follow from ``model.json``: an organ whose Dice on the training CT is at least :data:`FINDS` is
listed; with reference volume ``R`` (TotalSegmentator's label map of the sample, voxels x 27 ul) and Dice
``d`` the predicted volume lies in ``[R*d/(2-d), R*(2-d)/d]``, rounded outwards.

Example::

    >>> volume_range(1000.0, 0.9)
    (818, 1223)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["FINDS", "VOXEL_ML", "expectation_table", "volume_range", "write_expectation_table"]

#: An organ with at least this Dice on the training CT is one the model is expected to find.
FINDS = 0.3
#: Volume of one voxel of the 3 mm sample CT, ml.
VOXEL_ML = 0.027

_ABOUT = (
    "What the bundled demo model must find in the bundled sample CT: read by the module's self-test (in Slicer) "
    "and by Testing/GASASegmenter/test_demoModel.py (the same check through the logic on real MRML). Written by "
    "`python -m train.demo` (train/demo/selftest_table.py) from the bundle's model.json. Each range is the volume "
    "a model with the given Dice on this CT can produce: with reference volume R and Dice d, the predicted volume "
    "lies in [R*d/(2-d), R*(2-d)/d] (rounded outwards). R is TotalSegmentator's label map of the sample (voxels "
    "x 27 ul); d is model.json's training.folds.*.validation.per_class Dice. Organs with Dice below "
    f"{FINDS} are not listed."
)


def volume_range(reference_ml: float, dice: float) -> tuple[int, int]:
    """The smallest and largest volume (ml, rounded outwards) a prediction with this Dice can have."""
    if not 0 < dice <= 1:
        raise ValueError(f"dice must be in (0, 1], got {dice}")
    return math.floor(reference_ml * dice / (2 - dice)), math.ceil(reference_ml * (2 - dice) / dice)


def expectation_table(model_json: dict[str, Any], model_id: str, sample: str = "example_ct.nii.gz") -> dict:
    """The table for a bundle's ``model.json`` (its per-class validation Dice and reference voxel counts)."""
    organs = []
    for fold in model_json["training"]["folds"].values():
        for name, record in fold["validation"]["per_class"].items():
            dice = record.get("dice") or 0.0
            if dice >= FINDS:
                reference = record["n_ref"] * VOXEL_ML
                low, high = volume_range(reference, dice)
                organs.append(
                    {"name": name, "min_ml": low, "max_ml": high, "reference_ml": round(reference, 1),
                     "dice": round(dice, 3)}
                )  # fmt: skip
    return {
        "schema_version": 1,
        "about": _ABOUT,
        "model_id": model_id,
        "sample": sample,
        "options": {"device": "auto", "tta": False},
        "organs": organs,
    }


def write_expectation_table(bundle: Path, target: Path, model_id: str = "gasa-demo-btcv") -> Path:
    """Write the table for ``bundle`` to ``target`` (JSON, one organ per line)."""
    table = expectation_table(json.loads((bundle / "model.json").read_text(encoding="utf-8")), model_id)
    organs = ",\n".join("    " + json.dumps(o) for o in table["organs"])
    head = json.dumps({k: v for k, v in table.items() if k != "organs"}, indent=2)[:-2]
    target.write_text(f'{head},\n  "organs": [\n{organs}\n  ]\n}}\n', encoding="utf-8")
    return target
