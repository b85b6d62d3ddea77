"""The bundled demo model on the bundled sample CT through the logic on real MRML: the self-test's own check.

The organs and volume ranges come from ``GASASegmenter/Resources/SelfTest/expectedOrgans.json``, the table
the Slicer self-test reads too; the table itself is checked against the shipped model's recorded Dice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from GASASegmenterLib.catalog import catalogModels
from GASASegmenterLib.logic import SegmenterLogic, SegmentOptions
from GASASegmenterLib.resultChecks import EXPECTATIONS_PATH, loadExpectations, organVolumeProblems, segmentVolumesMl
from sceneHelpers import loadVolume

from train.demo.selftest_table import expectation_table

REPO = Path(__file__).resolve().parents[2]


def _demoEntry(modelId: str):
    """The bundled demo model as the panel lists it (GASACore's catalogue)."""
    entry = next(entry for entry in catalogModels() if entry.id == modelId)
    assert entry.state == "bundled" and entry.available and entry.path == REPO / "Resources" / "models" / modelId
    return entry


def test_the_table_follows_from_the_models_recorded_dice() -> None:
    expectations = loadExpectations()
    table = json.loads(EXPECTATIONS_PATH.read_text(encoding="utf-8"))
    model = json.loads((_demoEntry(expectations.modelId).path / "model.json").read_text(encoding="utf-8"))
    perClass = {
        name: record
        for fold in model["training"]["folds"].values()
        for name, record in fold["validation"]["per_class"].items()
    }
    listed = {organ["name"]: organ for organ in table["organs"]}
    assert table == expectation_table(model, expectations.modelId)  # the table `python -m train.demo` writes
    assert len(listed) >= 4 and {"liver", "spleen", "right kidney", "left kidney"} <= set(listed)
    for name, organ in listed.items():
        dice, reference = perClass[name]["dice"], perClass[name]["n_ref"] * 0.027  # 3 mm voxels of the sample
        assert round(dice, 3) == organ["dice"] and math.isclose(organ["reference_ml"], reference, abs_tol=0.1)
        assert math.floor(reference * dice / (2 - dice)) == organ["min_ml"]
        assert math.ceil(reference * (2 - dice) / dice) == organ["max_ml"]


def test_the_demo_model_finds_its_organs_in_the_sample_ct(scene, example_ct: Path) -> None:
    expectations = loadExpectations()
    assert example_ct.name == expectations.sample
    volume = loadVolume(scene, example_ct)
    options = SegmentOptions(**expectations.options)
    # the listed entry: the run reads its description and the engine resolves (and checks) the catalogue id
    node = SegmenterLogic(scene).segment(volume, _demoEntry(expectations.modelId), options, createSurface=False)
    volumes = segmentVolumesMl(node)
    assert len(volumes) == 13 and all(v >= 0 for v in volumes.values())
    assert organVolumeProblems(volumes, expectations) == []
    liver = next(organ for organ in expectations.organs if organ.name == "liver")
    assert organVolumeProblems({**volumes, "liver": 0.0}, expectations) == [
        f"liver: 0.0 ml, expected {liver.minMl:g}-{liver.maxMl:g} ml for gasa-demo-btcv"
    ]
