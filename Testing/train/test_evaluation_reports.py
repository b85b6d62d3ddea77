"""evaluate_folders, the CSV / Markdown / JSON / PNG writers and the ``evaluate`` command line."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from train.evaluation import add_evaluate_parser, evaluate_folders, markdown_table, write_reports


def _write(path: Path, array: np.ndarray, spacing=(1.0, 1.0, 2.0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Two KiTS-like cases: case_a predicted perfectly, case_b with the tumor called cyst and no cyst in truth."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    reference = np.zeros((4, 10, 10), dtype=np.uint8)
    reference[1:3, 2:8, 2:8] = 1
    reference[1:3, 3:5, 3:5] = 2
    _write(gt / "case_a.nii.gz", reference)
    _write(pred / "case_a.nii.gz", reference)
    _write(gt / "case_b.nii.gz", reference)
    wrong = reference.copy()
    wrong[wrong == 2] = 3
    _write(pred / "case_b.nii.gz", wrong)
    _write(pred / "unrelated.nii.gz", reference)  # no reference: ignored
    return pred, gt


def test_evaluate_folders_with_kits23_classes(folders: tuple[Path, Path]) -> None:
    result = evaluate_folders(*folders, label_set="kits23")
    assert [case.case_id for case in result.cases] == ["case_a", "case_b"]
    assert result.class_means("dice") == {"kidney and masses": 1.0, "masses": 1.0, "tumor": 0.5}
    assert result.mean("dice") == pytest.approx(2.5 / 3)
    assert [round(c.tolerance_mm, 4) for c in result.classes] == [1.0331, 1.1329, 1.1498]


def test_classes_found_in_the_references_and_absent_ones(folders: tuple[Path, Path]) -> None:
    inferred = evaluate_folders(*folders)
    assert [c.name for c in inferred.classes] == ["label_1", "label_2"]
    explicit = evaluate_folders(*folders, labels={"background": 0, "kidney": 1, "cyst": 3}, tolerance_mm=2.0)
    assert math.isnan(explicit.cases[0].dice[1])  # cyst absent from both: NaN, left out of the mean
    assert explicit.cases[1].dice[1] == 0.0  # predicted but absent from the reference
    assert explicit.class_means("dice")["cyst"] == 0.0
    assert {c.tolerance_mm for c in explicit.classes} == {2.0}


def test_missing_predictions_and_mismatched_grids_are_refused(folders: tuple[Path, Path], tmp_path: Path) -> None:
    pred, gt = folders
    (pred / "case_b.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"missing: \['case_b'\]"):
        evaluate_folders(pred, gt)
    _write(pred / "case_b.nii.gz", np.zeros((4, 10, 10)), spacing=(1.0, 1.0, 3.0))
    with pytest.raises(ValueError, match="reference's spacing"):
        evaluate_folders(pred, gt)
    with pytest.raises(ValueError, match="expected a folder of label maps"):
        evaluate_folders(tmp_path / "nowhere", gt)


def test_reports_in_the_papers_layout(folders: tuple[Path, Path], tmp_path: Path) -> None:
    result = evaluate_folders(*folders, label_set="kits23")
    written = write_reports(result, tmp_path / "report")
    rows = list(csv.DictReader(written["csv"].open()))
    assert len(rows) == 2 * 3 + 3 + 1
    assert rows[2] == {
        "case": "case_a",
        "class": "tumor",
        "values": "2",
        "nsd_tolerance_mm": "1.1498198361434828",
        "dice": "1.000000",
        "nsd": "1.000000",
    }
    assert rows[-1]["case"] == "mean" and float(rows[-1]["dice"]) == pytest.approx(2.5 / 3, abs=1e-6)
    table = written["markdown"].read_text()
    assert table.startswith("| metric | kidney and masses | masses | tumor | mean |")
    assert "| Dice (%) | 100.00 | 100.00 | 50.00 | 83.33 |" in table
    assert "kidney and masses 1.0331 mm" in table and "NaN, excluded from the means" in table
    assert "weighted by their area" in table and "the KiTS23 challenge's rule" in table
    summary = json.loads(written["json"].read_text())
    assert summary["class_means"]["dice"]["tumor"] == 0.5
    assert written["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_states_a_single_tolerance(folders: tuple[Path, Path]) -> None:
    assert "NSD tolerance: 1 mm for every class." in markdown_table(evaluate_folders(*folders))


def test_evaluate_command_line(folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="gasa-train")
    add_evaluate_parser(parser.add_subparsers(dest="command"))
    pred, gt = folders
    labels_file = tmp_path / "dataset.json"
    labels_file.write_text(json.dumps({"labels": {"background": 0, "kidney": 1, "tumor": 2}}))
    out = tmp_path / "out"
    args = parser.parse_args(["evaluate", str(pred), str(gt), "--labels", str(labels_file), "--out", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "| metric | kidney | tumor | mean |" in printed and "written:" in printed
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "metrics.json", "metrics.md", "metrics.png"]
    args = parser.parse_args(["evaluate", str(pred), str(gt), "--labels", "kits23", "--tolerance", "2"])
    assert args.func(args) == 0
    assert "NSD tolerance: 2 mm for every class." in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--help"])
