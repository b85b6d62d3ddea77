"""Progress parsing, options, the process runner's tree kill, model import, terminology strings."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import slicer
from GASASegmenterLib.catalog import IMPORTED_MODELS_KEY, importedModels, importModel, modelLabels
from GASASegmenterLib.job import SegmentationOptions
from GASASegmenterLib.logic import foldsFromText
from GASASegmenterLib.processRunner import SubprocessRunner, isProcessAlive
from GASASegmenterLib.progress import parseProgressLine
from GASASegmenterLib.segmentationBuilder import terminologyEntryString

from GASACore.errors import ModelError
from GASACore.labels import LABEL_SETS


def test_progress_lines() -> None:
    event = parseProgressLine('{"event": "progress", "stage": "predict", "fraction": 0.42}')
    assert (event.kind, event.stage, event.fraction) == ("progress", "predict", 0.42)
    assert event.overall == pytest.approx(0.15 + 0.75 * 0.42)
    assert (
        parseProgressLine('{"event": "progress", "stage": "predict", "fraction": 0.5, "overall": 0.3}').overall == 0.3
    )
    assert parseProgressLine('{"event": "done", "output": "/x.nrrd"}').output == "/x.nrrd"
    assert parseProgressLine('{"event": "error", "message": "bad input"}').message == "bad input"
    assert parseProgressLine("Traceback (most recent call last):").kind == "log"
    assert parseProgressLine("   ") is None


def test_options_to_engine_arguments() -> None:
    args = SegmentationOptions(device="cuda", folds=("0", "2"), tta=False, stepSize=0.75, fast=True).engineArguments()
    assert args == ["--device", "cuda", "--step-size", "0.75", "--folds", "0", "2", "--no-tta", "--fast"]
    assert SegmentationOptions().engineArguments() == ["--device", "auto", "--step-size", "0.5"]
    with pytest.raises(ValueError, match="device"):
        SegmentationOptions(device="mps")
    with pytest.raises(ValueError, match="step size"):
        SegmentationOptions(stepSize=0)
    assert foldsFromText("all") == [] and foldsFromText("0, 1 2") == ["0", "1", "2"]


def test_runner_kills_the_whole_process_tree(tmp_path: Path) -> None:
    pidFile = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidFile)!r}, 'w').write(str(child.pid))\n"
        'print(\'{"event": "progress", "stage": "load", "fraction": 0.5}\', flush=True)\n'
        "time.sleep(60)\n"
    )
    runner = SubprocessRunner()
    runner.start([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    lines: list[str] = []
    while not lines and time.monotonic() < deadline:
        lines = runner.readLines()
        time.sleep(0.05)
    assert lines and parseProgressLine(lines[0]).stage == "load"
    child = int(pidFile.read_text())
    assert runner.exitCode() is None and isProcessAlive(child)
    started = time.monotonic()
    runner.kill()
    assert time.monotonic() - started < 10
    time.sleep(0.2)
    assert not isProcessAlive(runner.pid)
    assert not isProcessAlive(child)


def test_runner_reports_exit_code_and_stderr() -> None:
    runner = SubprocessRunner()
    runner.start([sys.executable, "-c", "import sys; print('out'); sys.stderr.write('oops\\n'); sys.exit(3)"])
    while runner.exitCode() is None:
        time.sleep(0.02)
    assert runner.exitCode() == 3
    assert runner.readLines() == ["out"] and runner.readErrorLines() == ["oops"]


def test_import_model_verifies_and_remembers(tiny_bundle: Path, tmp_path: Path) -> None:
    settings: dict[str, str] = {}
    entry = importModel(tiny_bundle, settings)
    assert entry.path == tiny_bundle.resolve()
    assert json.loads(settings[IMPORTED_MODELS_KEY]) == [str(tiny_bundle.resolve())]
    importModel(tiny_bundle, settings)  # once only
    assert [e.path for e in importedModels(settings)] == [tiny_bundle.resolve()]
    assert [label.name for label in modelLabels(entry.path)] == [label.name for label in LABEL_SETS["btcv"]]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="is not a model"):
        importModel(tmp_path / "empty", settings)
    assert len(importedModels(settings)) == 1


@pytest.mark.parametrize("label_set", ["btcv", "amos", "kits23"])
def test_terminology_strings_parse_in_slicer(label_set: str) -> None:
    for label in LABEL_SETS[label_set]:
        entryString = terminologyEntryString(label)
        entry = slicer.vtkSlicerTerminologyEntry()
        assert slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(entryString, entry)
        assert entry.GetTypeObject().GetCodeMeaning() == label.terminology.type.meaning
        assert entry.GetCategoryObject().GetCodingSchemeDesignator() == "SCT"
        term = label.terminology
        expected = slicer.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry(
            "Segmentation category and type - 3D Slicer General Anatomy list",
            term.category.value, "SCT", term.category.meaning,
            term.type.value, "SCT", term.type.meaning,
            term.modifier.value if term.modifier else "", "SCT" if term.modifier else "",
            term.modifier.meaning if term.modifier else "",
            "Anatomic codes - DICOM master list", "", "", "", "", "", "",
        )  # fmt: skip
        assert entryString == expected
