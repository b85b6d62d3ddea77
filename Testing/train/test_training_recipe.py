"""The training recipe (optimiser / sampling / augmentation knobs) and the contrast-phase augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from GASACore.labels import LABEL_SETS
from train.datasets import TOTALSEG_TO_BTCV
from train.training.phase_augmentation import PHASES, ContrastPhaseTransform, shifts_by_label, tissue_of
from train.training.recipe import TrainingRecipe


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("optimizer", "adam", "optimizer must be one of"),
        ("initial_lr", 0.0, "initial_lr must be in (0, 1]"),
        ("initial_lr", float("nan"), "initial_lr must be in (0, 1]"),
        ("oversample_foreground", 1.5, "oversample_foreground is a probability"),
        ("p_contrast_phase", -0.1, "p_contrast_phase is a probability"),
        ("rotation_deg", 270.0, "rotation_deg must be in [0, 180]"),
        ("scaling", (1.2, 0.8), "scaling must be a range"),
    ],
)
def test_recipe_refuses_out_of_range_values(field: str, value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        TrainingRecipe(**{field: value})


def test_recipe_round_trips_through_json_and_refuses_unknown_fields() -> None:
    recipe = TrainingRecipe(optimizer="adamw", initial_lr=3e-3, scaling=(0.8, 1.25), mirror=False)
    assert TrainingRecipe.from_json(recipe.to_json()) == recipe
    assert TrainingRecipe().rotation_rad == pytest.approx((-np.pi / 6, np.pi / 6))
    with pytest.raises(ValueError, match=r"unknown training recipe fields \['momentum'\]"):
        TrainingRecipe.from_json({**recipe.to_json(), "momentum": 0.9})


def test_every_btcv_organ_has_a_tissue() -> None:
    names = {label.name: label.value for label in LABEL_SETS["btcv"]}
    tissues = shifts_by_label(names)
    assert sorted(tissues) == sorted(names.values())  # all 13 organs
    assert tissues[names["aorta"]] == "artery" and tissues[names["portal and splenic veins"]] == "portal"
    assert tissue_of("inferior vena cava") == "vein" and tissue_of("gallbladder") == "fluid"


def _real_patch(shared_data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A 48^3 patch of the real example CT (normalised by a 100 HU std) and its BTCV labels, (1, z, y, x)."""
    folder = shared_data / "totalsegmentator"
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_ct.nii.gz"))).astype(np.float32)
    source = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_seg_fast_force_split.nii.gz")))
    seg = np.zeros_like(source, dtype=np.int16)
    for totalseg_value, btcv_value in TOTALSEG_TO_BTCV.items():
        seg[source == totalseg_value] = btcv_value
    z, y, x = (round(float(c.mean())) for c in np.nonzero(seg == 6))  # centred on the liver
    window = (slice(z - 24, z + 24), slice(y - 24, y + 24), slice(x - 24, x + 24))
    return torch.from_numpy(ct[window] / 100.0)[None], torch.from_numpy(seg[window])[None]


def test_contrast_phase_shifts_each_organ_within_its_range_and_nothing_else(shared_data: Path) -> None:
    image, seg = _real_patch(shared_data)
    names = {label.name: label.value for label in LABEL_SETS["btcv"]}
    tissues = shifts_by_label(names)
    present = [int(v) for v in torch.unique(seg) if int(v) in tissues]
    assert names["liver"] in present and len(present) >= 3
    np.random.seed(0)
    transform = ContrastPhaseTransform(tissues, hu_per_unit=100.0, phases=("portal_venous",))
    out = transform(image=image.clone(), segmentation=seg.clone())
    shift_hu = (out["image"] - image) * 100.0
    assert torch.allclose(shift_hu[seg == 0], torch.zeros(1), atol=1e-3)  # background untouched
    for value in present:
        low, high = PHASES["portal_venous"][tissues[value]]
        organ = shift_hu[seg == value]
        assert float(organ.min()) >= low - 1e-2 and float(organ.max()) <= high + 1e-2
        assert float(organ.max() - organ.min()) < 1e-2  # one shift per organ
    assert torch.equal(out["segmentation"], seg)  # labels are not changed


def test_contrast_phase_refuses_unknown_phase_and_bad_scale() -> None:
    with pytest.raises(ValueError, match="unknown contrast phases"):
        ContrastPhaseTransform({6: "liver"}, 100.0, phases=("delayed",))
    with pytest.raises(ValueError, match="hu_per_unit must be > 0"):
        ContrastPhaseTransform({6: "liver"}, 0.0)
