"""The reproduced table's writer with given numbers: rounding, brackets and signs, layout, CSV / JSON, plots."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from train.reproduce import ReproductionState, table_spec
from train.reproduce.table_writer import aggregate, format_difference, format_percent, markdown_table, write_tables

CLASSES = [{"name": "spleen", "nsd_tolerance_mm": 1.0}, {"name": "liver", "nsd_tolerance_mm": 1.0}]


@pytest.mark.parametrize(
    ("fraction", "shown"),
    [(0.8169, "81.69"), (0.81685, "81.69"), (0.816849, "81.68"), (0.0, "0.00"), (1.0, "100.00"), (0.00005, "0.01"),
     (None, "-"), (math.nan, "-")],
)  # fmt: skip
def test_percent_has_two_decimals_rounded_half_up_on_the_decimal_value(fraction: float | None, shown: str) -> None:
    assert format_percent(fraction) == shown


@pytest.mark.parametrize(
    ("fraction", "baseline", "bracket"),
    [
        (0.8169, 0.8152, "(+0.17)"),  # the paper's GASA on BTCV
        (0.7603, 0.7610, "(-0.07)"),  # a loss keeps its sign
        (0.8558, 0.8558, "(+0.00)"),  # no change: "+0.00" (the paper writes "+0")
        (0.81685, 0.81674, "(+0.02)"),  # between the shown 81.69 and 81.67, not the raw 0.011
        (0.7, 0.6, "(+10.00)"),
        (0.8, None, ""),
        (None, 0.8, ""),
    ],
)
def test_difference_is_between_the_shown_values_with_its_sign(
    fraction: float | None, baseline: float | None, bracket: str
) -> None:
    assert format_difference(fraction, baseline) == bracket


def _run(network: str, fold: str, dice: float | None, nsd: float | None, spleen: float, *, done: bool = True) -> dict:
    record: dict[str, Any] = {"network": network, "fold": fold, "seed": 0, "status": "done" if done else "started"}
    if done:
        record |= {"dice": dice, "nsd": nsd, "finished": "2026-12-02T00:00:00+00:00"}
        record["class_means"] = {"dice": {"spleen": spleen, "liver": None}, "nsd": {"spleen": spleen, "liver": None}}
    return record


def _state(folder: Path, key: str, runs: list[dict], skipped: dict[str, str] | None = None) -> ReproductionState:
    config = {"table": 2, "dataset_key": key, "dataset": f"Dataset_{key}", "schedule": {}, "plans_name": "nnUNetPlans"}
    state = ReproductionState(folder / key / "state.json", config, classes=CLASSES, skipped=skipped or {})
    state.runs = {f"{r['network']}/fold_{r['fold']}/seed_0": r for r in runs}
    state.save()
    return state


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A reproduction folder: Table 2 on BTCV (2 folds each, one unfinished CBAM run) and AMOS (MAT skipped)."""
    _state(
        tmp_path,
        "btcv",
        [
            _run("nnunet", "0", 0.80, 0.75, 0.9),
            _run("nnunet", "1", 0.83, 0.77, 0.7),  # mean 0.815, 0.76
            _run("gasa-unet", "0", 0.82, 0.76, 0.8),
            _run("gasa-unet", "1", 0.8138, 0.7506, 0.8),  # mean 0.8169, 0.7553
            _run("nnunet-cbam", "0", 0.81, 0.70, 0.5),
            _run("nnunet-cbam", "1", None, None, 0.0, done=False),
        ],
    )
    _state(
        tmp_path,
        "amos",
        [_run("nnunet", "0", 0.9, 0.85, 0.9), _run("nnunet-mat", "0", 0.0, 0.0, 0.0, done=False)],
        {"nnunet-mat": "MAT cannot process asymmetric 3D features (the paper skips MAT on AMOS)"},
    )
    return tmp_path


def test_aggregate_means_over_finished_runs(out: Path) -> None:
    cells = aggregate(ReproductionState.read(out / "btcv" / "state.json"))
    assert cells["nnunet"].means == pytest.approx({"dice": 0.815, "nsd": 0.76})
    assert cells["nnunet"].class_means["dice"] == {"spleen": pytest.approx(0.8), "liver": None}
    assert (cells["nnunet-cbam"].runs, cells["nnunet-cbam"].recorded) == (1, 2)


def test_markdown_has_the_papers_layout_brackets_and_notes(out: Path) -> None:
    table = table_spec(2)
    states = {key: ReproductionState.read(out / key / "state.json") for key in ("btcv", "amos")}
    text = markdown_table(table, {key: aggregate(state) for key, state in states.items()})
    lines = text.splitlines()
    assert lines[0].startswith("Table 2 (reproduced): Comparison of segmentation performance with different axial")
    assert "| Models | BTCV Dice | BTCV NSD | AMOS Dice | AMOS NSD |" in lines
    assert "| nnUNet (nnunet) | 81.50 | 76.00 | 90.00 | 85.00 |" in lines
    assert "| +CBAM (nnunet-cbam) | 81.00* (-0.50) | 70.00* (-6.00) | - | - |" in lines
    assert "| +MAT (nnunet-mat) | - | - | - | - |" in lines
    assert "| +GASA(Ours) (gasa-unet) | 81.69 (+0.19) | 75.53 (-0.47) | - | - |" in lines
    paper = lines[lines.index("The paper's Table 2:") :]
    assert "| +GASA(Ours) (gasa-unet) | 81.69 | 76.03 | 89.83 | 85.64 |" in paper
    assert "| +MAT (nnunet-mat) | 81.29 | 75.83 | - | - |" in paper
    assert "nnunet-cbam*: 1 of 2 recorded runs finished" in text
    assert (
        "AMOS (cross-validation, a run is a fold and seed scored on the fold's validation cases): nnunet: 1 run(s); "
        "nnunet-mat: skipped, MAT cannot process asymmetric 3D features (the paper skips MAT on AMOS)."
    ) in lines
    assert text.rstrip().endswith("Not run: nnunet-at, gasa-l.")
    rows = [line.split(" | ")[0][2:] for line in lines[4:9]]
    assert rows == ["nnUNet (nnunet)", "+CBAM (nnunet-cbam)", "+MAT (nnunet-mat)", "+GASA(Ours) (gasa-unet)", ""]


def test_written_csv_json_and_plots_agree(out: Path) -> None:
    written = write_tables(table_spec(2), out)
    assert written["markdown"] == out / "table2.md" and written["plot_btcv"] == out / "btcv" / "table2_per_organ.png"
    data = json.loads(written["json"].read_text())
    gasa = data["datasets"]["btcv"]["rows"]["gasa-unet"]
    assert (gasa["dice_percent"], gasa["dice_difference"], gasa["runs"]) == ("81.69", "(+0.19)", 2)
    assert gasa["dice"] == pytest.approx(0.8169) and gasa["paper"] == {"dice": 81.69, "nsd": 76.03}
    assert gasa["class_means"]["nsd"] == {"spleen": pytest.approx(0.8), "liver": None}
    assert data["datasets"]["amos"]["rows"]["nnunet-mat"]["skipped"].startswith("MAT cannot process")
    with written["csv"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    cbam = next(r for r in rows if r["network"] == "nnunet-cbam" and r["metric"] == "nsd")
    shown = (cbam["percent"], cbam["difference"], cbam["value"], cbam["paper_percent"])
    assert shown == ("70.00", "(-6.00)", "0.700000", "75.84")
    mat = next(r for r in rows if r["dataset"] == "amos" and r["network"] == "nnunet-mat")
    assert (mat["percent"], mat["paper_percent"], mat["note"][:3]) == ("-", "", "MAT")
    for key in ("btcv", "amos"):
        assert (out / key / "table2_per_organ.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match=r"expected a reproduction of table 1 in .*, found none"):
        write_tables(table_spec(1), out)


def test_test_set_protocol_averages_the_seeds_ensemble_scores(tmp_path: Path) -> None:
    runs = [_run("nnunet", f, 0.1, 0.1, 0.1) | {"seed": seed} for f in ("0", "1") for seed in (0, 1)]
    runs += [_run("gasa-unet", "0", 0.1, 0.1, 0.1), _run("gasa-unet", "1", 0.1, 0.1, 0.1, done=False)]
    state = _state(tmp_path, "btcv", runs)
    state.runs = {f"{r['network']}/fold_{r['fold']}/seed_{r['seed']}": r for r in runs}
    state.config["protocol"] = "test-set"
    scores = {"spleen": 0.9, "liver": None}
    state.tests = {
        "nnunet/seed_0": {"network": "nnunet", "seed": 0, "dice": 0.80, "nsd": 0.70,
                          "class_means": {"dice": scores, "nsd": scores}},
        "nnunet/seed_1": {"network": "nnunet", "seed": 1, "dice": 0.90, "nsd": 0.72,
                          "class_means": {"dice": scores, "nsd": scores}},
    }  # fmt: skip
    state.save()
    cells = aggregate(ReproductionState.read(state.path))
    assert cells["nnunet"].means == pytest.approx({"dice": 0.85, "nsd": 0.71})  # the seeds' ensembles, not the folds
    assert (cells["nnunet"].runs, cells["nnunet"].recorded) == (2, 2)
    assert (cells["gasa-unet"].runs, cells["gasa-unet"].recorded, cells["gasa-unet"].means["dice"]) == (0, 1, None)
    text = write_tables(table_spec(2), tmp_path)["markdown"].read_text()
    assert "| nnUNet (nnunet) | 85.00 | 71.00 |" in text and "| +GASA(Ours) (gasa-unet) | - | - |" in text
    assert (
        "BTCV (held-out test set, a run is a seed whose fold ensemble (mirroring TTA) predicts it): nnunet: 2" in text
    )
