"""Golden regression test of the bundled demo model on its training CT: per-organ Dice thresholds.

The thresholds sit a little under what the shipped bundle measures (``model.json`` records nnU-Net's own
validation of the same CT); liver, spleen and both kidneys must reach 0.85 (issue 12's acceptance). A new
demo model that is worse on any organ fails here. The scan is the only one the model was trained on: this
says the bundle is the trained one and the engine runs it faithfully, nothing about new patients.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore import SegmentOptions, segment
from GASACore.labels import LABEL_SETS
from train.datasets import TOTALSEG_TO_BTCV
from train.evaluation.metrics import dice

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "Resources" / "models" / "gasa-demo-btcv"

#: Lowest Dice per organ on the training CT (engine, no TTA: the model trained without mirroring).
GOLDEN_DICE = {
    "spleen": 0.90,
    "right kidney": 0.90,
    "left kidney": 0.90,
    "gallbladder": 0.85,
    "liver": 0.93,
    "stomach": 0.88,
    "aorta": 0.88,
    "inferior vena cava": 0.88,
    "portal and splenic veins": 0.80,
    "pancreas": 0.80,
    "right adrenal gland": 0.70,
    "left adrenal gland": 0.75,
}


@pytest.fixture(scope="module")
def dice_on_training_ct(shared_data: Path) -> dict[str, float]:
    folder = shared_data / "totalsegmentator"
    result = segment(folder / "example_ct.nii.gz", BUNDLE, options=SegmentOptions(device="cpu", tta=False))
    source = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_seg_fast_force_split.nii.gz")))
    reference = np.zeros_like(result.labels)
    for totalseg_value, btcv_value in TOTALSEG_TO_BTCV.items():
        reference[source == totalseg_value] = btcv_value
    return {
        label.name: dice(result.labels == label.value, reference == label.value)
        for label in LABEL_SETS["btcv"]
        if label.name in GOLDEN_DICE
    }


@pytest.mark.parametrize("organ", sorted(GOLDEN_DICE))
def test_demo_model_keeps_its_dice_on_the_training_ct(dice_on_training_ct: dict[str, float], organ: str) -> None:
    assert dice_on_training_ct[organ] >= GOLDEN_DICE[organ], f"{organ}: Dice {dice_on_training_ct[organ]:.3f}"


def test_acceptance_organs_and_record_agree_with_the_engine(dice_on_training_ct: dict[str, float]) -> None:
    assert all(dice_on_training_ct[o] >= 0.85 for o in ("liver", "spleen", "right kidney", "left kidney"))
    record = json.loads((BUNDLE / "model.json").read_text(encoding="utf-8"))
    per_class = record["training"]["folds"]["fold_all"]["validation"]["per_class"]
    for organ, value in dice_on_training_ct.items():  # nnU-Net's validation and GASACore's engine, same CT
        assert abs(per_class[organ]["dice"] - value) < 0.03, organ
