"""The engine command, model import, terminology strings, the logic's imports."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import slicer
from GASASegmenterLib.catalog import IMPORTED_MODELS_KEY, importedModels, importModel, modelLabels
from GASASegmenterLib.job import segmentationCommand
from GASASegmenterLib.logic import deviceCheckCommand, engineCommand

from GASACore.cli import parse_args
from GASACore.errors import ModelError
from GASACore.labels import LABEL_SETS, terminology_entry
from GASACore.options import FoldSelection, SegmentOptions


def test_engine_command_parses_back_to_the_same_options(tmp_path: Path) -> None:
    options = SegmentOptions(device="cuda:1", folds=FoldSelection.parse("0, 2 all"), tta=False, step_size=0.75)
    command = segmentationCommand(engineCommand(), tmp_path / "in.nrrd", tmp_path / "out.nrrd", tmp_path, options)
    assert command[:3] == [sys.executable, "-m", "GASACore.cli"] and command[-2:] == ["--progress", "json"]
    args = parse_args(command[3:])
    assert (args.input, args.output, args.model) == (tmp_path / "in.nrrd", tmp_path / "out.nrrd", str(tmp_path))
    assert SegmentOptions.from_args(args) == options and args.progress == "json"
    offline = SegmentOptions(device="cpu", offline=True)
    byId = segmentationCommand(engineCommand(), tmp_path / "in.nrrd", tmp_path / "o.nrrd", "tiny@1.0.0", offline)
    args = parse_args(byId[3:])
    assert args.model == "tiny@1.0.0" and SegmentOptions.from_args(args) == offline and "--offline" in byId
    assert deviceCheckCommand("CUDA")[3:] == ["--check-device", "--device", "cuda"]


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
        entryString = terminology_entry(label)
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


#: Library modules that import in plain Python with slicer-core (and no qt): none may pull in torch.
TORCH_FREE = [
    "backgroundProcess", "catalog", "compatibility", "dependencies", "engineQuery", "job", "logic", "modelDownload",
    "modelRun", "panelState", "processRunner", "processTree", "qtProcessRunner", "resultChecks", "segmentationBuilder",
    "volumeIO",
]  # fmt: skip


def test_logic_and_catalog_import_without_torch() -> None:
    """Slicer's own process never imports torch: the library modules and what they import."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / 'GASASegmenter')!r})\n"
        "import importlib\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module('GASASegmenterLib.' + name)\n"
        "from GASASegmenterLib.logic import SegmentOptions\n"
        "print(' '.join(SegmentOptions(device='cpu', folds='0 1').to_argv()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["--device", "cpu", "--folds", "0", "1", "--step-size", "0.5", "--batch-size", "1"]


def test_no_module_file_imports_torch() -> None:
    """The application-only files (widget, parameter node, self-test) are checked by their source."""
    module = Path(__file__).resolve().parents[2] / "GASASegmenter"
    for path in module.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] == "torch"], path
        assert "GASACore.bundle.store" not in imported and "GASACore.pipeline" not in imported, path
