"""GASACore never imports slicer, qt, ctk or vtk: every module imports in a clean interpreter without them."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import GASACore

FORBIDDEN = ("slicer", "qt", "ctk", "vtk", "vtkmodules", "PythonQt")


def test_every_gasacore_module_imports_without_slicer_qt_ctk_vtk() -> None:
    modules = [m.name for m in pkgutil.walk_packages(GASACore.__path__, "GASACore.")]
    assert {"GASACore.network", "GASACore.bundle", "GASACore.cli"} <= set(modules)
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"GASACore imported {result.stdout.strip()}"


TORCH_FREE = (
    "GASACore",
    "GASACore.enums",
    "GASACore.errors",
    "GASACore.options",
    "GASACore.events",
    "GASACore.cli",
    "GASACore.home",
    "GASACore.labels",
    "GASACore.network",
    "GASACore.bundle",
    "GASACore.preprocessing",
    "GASACore.models",
    "GASACore.models.cli",
)


def _without_torch(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in which ``import torch`` fails (as in Slicer before PyTorch)."""
    prelude = "import sys\nsys.modules['torch'] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120, check=False
    )


def test_options_events_and_the_cli_parser_import_without_torch() -> None:
    code = (
        "import importlib, json\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "from GASACore import SegmentOptions\n"
        "from GASACore.cli import parse_args\n"
        "args = parse_args(['ct.nii.gz', '-o', 'seg.nii.gz', '-m', 'model', '--device', 'cuda:1', '--folds', 'all'])\n"
        "print(json.dumps(SegmentOptions.from_args(args).to_argv()))\n"
    )
    result = _without_torch(code)
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout)
    assert argv[:4] == ["--device", "cuda:1", "--folds", "all"]


def test_check_device_answers_even_without_torch() -> None:
    result = _without_torch("from GASACore.cli import main\nsys.exit(main(['--check-device']))\n")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cuda_usable"] is False and report["torch"] is None and report["device"] == "cpu"
    assert report["reason"].startswith("torch cannot be imported (ModuleNotFoundError: import of torch halted")
