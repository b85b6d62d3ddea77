"""The supported Slicer and Python: README, extension metadata and the check at module load agree; syntax fits."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from GASASegmenterLib.compatibility import MINIMUM_PYTHON, MINIMUM_SLICER, unsupportedMessage

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "GASASegmenter"
#: Files an older Slicer must still load to show its message (Slicer 5.6 and 5.8 run Python 3.9).
LOADER_FILES = [MODULE / "GASASegmenter.py", MODULE / "GASASegmenterLib" / "compatibility.py",
                MODULE / "GASASegmenterLib" / "__init__.py"]  # fmt: skip


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


@pytest.mark.parametrize("package", ["GASASegmenter", "GASACore"])
def test_every_file_parses_for_the_minimum_python(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert len(files) > 10
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=MINIMUM_PYTHON)


def test_an_older_slicer_still_loads_the_module_to_say_why_not() -> None:
    for path in LOADER_FILES:
        ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=(3, 9))
    assert "from GASASegmenterLib.compatibility import unsupportedMessage" in LOADER_FILES[0].read_text()


def test_readme_metadata_and_load_check_name_the_same_versions() -> None:
    slicer, python = _dotted(MINIMUM_SLICER), _dotted(MINIMUM_PYTHON)
    assert (slicer, python) == ("5.10", "3.12")
    readme = (MODULE / "README.md").read_text(encoding="utf-8")
    assert f"3D Slicer {slicer} or newer" in readme and f"Python {python}" in readme
    assert not re.search(r"Slicer 5\.[0-9] or newer", readme)
    cmake = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    assert f'set(GASASegmenter_MINIMUM_SLICER_VERSION "{slicer}")' in cmake
    assert f'set(GASASegmenter_MINIMUM_PYTHON_VERSION "{python}")' in cmake
    assert "find_package(Slicer ${GASASegmenter_MINIMUM_SLICER_VERSION} REQUIRED)" in cmake
    assert "Slicer_REQUIRED_PYTHON_VERSION_DOT VERSION_LESS GASASegmenter_MINIMUM_PYTHON_VERSION" in cmake
    assert f"Needs 3D Slicer {slicer} or newer." in cmake
    assert f"Needs 3D Slicer {slicer} or newer." in LOADER_FILES[0].read_text(encoding="utf-8")


def test_the_load_check_message() -> None:
    assert unsupportedMessage((3, 12, 10), (5, 10)) == "" and unsupportedMessage((3, 13, 1), None) == ""
    message = unsupportedMessage((3, 9, 10), (5, 8))
    assert message == (
        "GASA Segmenter needs 3D Slicer 5.10 or newer (Python 3.12); 3D Slicer 5.8 runs Python 3.9.10. "
        "Install 3D Slicer 5.10 or newer, then install the extension again."
    )
    assert "this 3D Slicer runs Python 3.11" in unsupportedMessage((3, 11, 7))
    assert unsupportedMessage((3, 12, 0), (5, 9)).startswith("GASA Segmenter needs 3D Slicer 5.10 or newer")
