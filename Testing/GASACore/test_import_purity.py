"""GASACore never imports slicer, qt, ctk or vtk: every module imports in a clean interpreter without them."""

from __future__ import annotations

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
