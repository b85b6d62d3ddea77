"""The engine command, the engine query, the process runner's tree kill, model import, terminology strings."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slicer
from GASASegmenterLib.catalog import IMPORTED_MODELS_KEY, importedModels, importModel, modelLabels
from GASASegmenterLib.engineQuery import EngineQuery
from GASASegmenterLib.job import segmentationCommand
from GASASegmenterLib.logic import SegmenterLogic, deviceCheckCommand, engineCommand
from GASASegmenterLib.processRunner import SubprocessRunner, isProcessAlive
from GASASegmenterLib.segmentationBuilder import terminologyEntryString

from GASACore.cli import parse_args
from GASACore.errors import ModelError
from GASACore.events import ProgressEvent, Stage, parse_event_line
from GASACore.labels import LABEL_SETS
from GASACore.options import FoldSelection, SegmentOptions


def test_engine_command_parses_back_to_the_same_options(tmp_path: Path) -> None:
    options = SegmentOptions(device="cuda:1", folds=FoldSelection.parse("0, 2 all"), tta=False, step_size=0.75)
    command = segmentationCommand(engineCommand(), tmp_path / "in.nrrd", tmp_path / "out.nrrd", tmp_path, options)
    assert command[:3] == [sys.executable, "-m", "GASACore.cli"] and command[-2:] == ["--progress", "json"]
    args = parse_args(command[3:])
    assert (args.input, args.output, args.model) == (tmp_path / "in.nrrd", tmp_path / "out.nrrd", tmp_path)
    assert SegmentOptions.from_args(args) == options and args.progress == "json"
    assert deviceCheckCommand("CUDA")[3:] == ["--check-device", "--device", "cuda"]


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "engine.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_engine_query_reads_the_last_json_object(tmp_path: Path) -> None:
    command = _script(tmp_path, 'print("starting")\nprint(\'{"cuda_usable": false, "reason": "no GPU"}\')\n')
    query = EngineQuery(SubprocessRunner(), command)
    assert query.wait() == {"cuda_usable": False, "reason": "no GPU"} and query.error == ""


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("import sys\nsys.stderr.write('boom\\n')\nsys.exit(3)\n", "engine exit code 3: boom"),
        ("print('not json')\n", "the engine printed no JSON object (last line: 'not json')"),
        ("import time\ntime.sleep(30)\n", "the engine did not answer within 0.5 s"),
    ],
)
def test_engine_query_failures_say_why(tmp_path: Path, body: str, error: str) -> None:
    query = EngineQuery(SubprocessRunner(), _script(tmp_path, body), timeout=0.5 if "sleep" in body else 60)
    assert query.wait() is None and query.error == error
    assert not isProcessAlive(query.runner.pid)


def test_engine_query_that_cannot_start() -> None:
    query = EngineQuery(SubprocessRunner(), ["/nonexistent/PythonSlicer", "--check-device"])
    assert query.finished and query.result is None and query.error.startswith("could not start the engine")


def test_check_gpu_asks_the_engine() -> None:
    report = SegmenterLogic.checkDevice("auto")
    assert report["device"] == "cpu" and report["cuda_usable"] is False
    assert report["reason"].startswith("CUDA not usable (") and report["reason"].endswith("; using the CPU")
    assert report["torch"] and "arch_list" in report


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
    assert lines and parse_event_line(lines[0]) == ProgressEvent(Stage.LOAD, 0.5)
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


def test_logic_and_catalog_import_without_torch() -> None:
    """Slicer's own process never imports torch: the logic, the catalogue and what they import."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / 'GASASegmenter')!r})\n"
        "import GASASegmenterLib.logic, GASASegmenterLib.catalog, GASASegmenterLib.job, GASASegmenterLib.engineQuery\n"
        "from GASASegmenterLib.logic import SegmentOptions\n"
        "print(' '.join(SegmentOptions(device='cpu', folds='0 1').to_argv()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["--device", "cpu", "--folds", "0", "1", "--step-size", "0.5", "--batch-size", "1"]
