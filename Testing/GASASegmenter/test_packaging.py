"""The extension's CMake file lists, the .ui file and the widget, and the model catalogue agree."""

from __future__ import annotations

import ast
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "GASASegmenter"


def _cmakeList(path: Path, variable: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} not set in {path}"
    return [item.replace("${MODULE_NAME}", "GASASegmenter") for item in match.group(1).split()]


@pytest.mark.parametrize(
    ("cmake", "variable", "package"),
    [
        (REPO / "GASACore" / "CMakeLists.txt", "GASACORE_PYTHON_SCRIPTS", REPO / "GASACore"),
        (MODULE / "CMakeLists.txt", "MODULE_PYTHON_SCRIPTS", MODULE),
    ],
)
def test_cmake_lists_every_python_file_and_nothing_else(cmake: Path, variable: str, package: Path) -> None:
    listed = _cmakeList(cmake, variable)
    assert "GLOB" not in cmake.read_text(encoding="utf-8")
    missing = [item for item in listed if not (package / item).is_file()]
    assert not missing, f"{cmake} lists files that do not exist: {missing}"
    onDisk = sorted(
        str(p.relative_to(package)).replace("\\", "/")
        for p in package.rglob("*.py")
        if "__pycache__" not in p.parts and "Testing" not in p.relative_to(package).parts
    )
    unlisted = sorted(set(onDisk) - set(listed))
    assert not unlisted, f"{cmake} does not list {unlisted}: add them to {variable}"


def test_cmake_resources_exist_and_top_level_has_metadata() -> None:
    for item in _cmakeList(MODULE / "CMakeLists.txt", "MODULE_PYTHON_RESOURCES"):
        assert (MODULE / item).is_file(), item
    for cmake in (REPO / "GASACore" / "CMakeLists.txt",):
        for item in _cmakeList(cmake, "GASACORE_PYTHON_RESOURCES"):
            assert (cmake.parent / item).is_file(), item
    top = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    for key in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert f"set(EXTENSION_{key} " in top, key
    assert 'set(EXTENSION_CATEGORY "Segmentation")' in top and 'set(EXTENSION_DEPENDS "PyTorch")' in top
    assert "add_subdirectory(GASACore)" in top and "add_subdirectory(GASASegmenter)" in top
    module = (MODULE / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "WITH_GENERIC_TESTS" in module and "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in module
    assert "WITH_SUBDIR" in (REPO / "GASACore" / "CMakeLists.txt").read_text(encoding="utf-8")


def _uiNames() -> tuple[set[str], dict[str, str]]:
    root = ET.parse(MODULE / "Resources" / "UI" / "GASASegmenter.ui").getroot()
    names = {w.get("name") for w in root.iter("widget")} | {w.get("name") for w in root.iter("layout")}
    bound = {}
    for widget in root.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = widget.get("name")
    return names, bound


def test_ui_has_every_widget_the_widget_code_uses() -> None:
    names, _ = _uiNames()
    code = "".join((MODULE / "GASASegmenterLib" / name).read_text(encoding="utf-8")
                   for name in ("widget.py", "modelSelector.py"))  # fmt: skip
    used = set(re.findall(r"self\.ui\.(\w+)", code))
    used |= set(re.findall(r'"([a-z]\w*(?:Selector|ComboBox|Button|CheckBox|CollapsibleButton))"', code))
    assert used, "the widget uses no .ui objects?"
    assert sorted(used - names) == []


#: Parameter-node fields the widget keeps in step with its widget itself (items that change at run time).
UNBOUND_FIELDS = {"modelKey"}


def test_every_parameter_node_field_is_bound_through_SlicerParameterName() -> None:
    tree = ast.parse((MODULE / "GASASegmenterLib" / "parameterNode.py").read_text(encoding="utf-8"))
    wrapper = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "GASASegmenterParameterNode")
    fields = {n.target.id for n in wrapper.body if isinstance(n, ast.AnnAssign)}
    _, bound = _uiNames()
    assert fields >= UNBOUND_FIELDS and not UNBOUND_FIELDS & set(bound)
    unbound, unknown = fields - UNBOUND_FIELDS - set(bound), set(bound) - fields
    assert not unbound and not unknown, f"fields without a widget: {unbound}; bindings without field: {unknown}"


def _imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``from module import name`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.module or "", a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]


def test_no_import_cycle_and_no_private_names_across_modules() -> None:
    library = sorted((MODULE / "GASASegmenterLib").glob("*.py"))
    for path in library:
        imported = _imports(path)
        assert not [m for m, _ in imported if m.split(".")[0] == "GASASegmenter"], f"{path.name} imports the module"
        assert not [f"{m}.{n}" for m, n in imported if n.startswith("_")], f"{path.name} imports a private name"
    for path in (REPO / "GASACore").rglob("*.py"):
        assert not [f"{m}.{n}" for m, n in _imports(path) if n.startswith("_") and n != "__future__"], path


def test_metadata_names_contributors_as_name_org_and_no_unpublished_urls() -> None:
    top = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    contributors = re.search(r'set\(EXTENSION_CONTRIBUTORS "([^"]*)"\)', top).group(1)
    people = [item.strip() for item in contributors.split(",")]
    assert people and all(re.fullmatch(r"[^()]+ \([^()]+\)", person) for person in people), people
    tree = ast.parse((MODULE / "GASASegmenter.py").read_text(encoding="utf-8"))
    assigned = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "CONTRIBUTORS")
    assert ast.literal_eval(assigned) == people
    for key in ("HOMEPAGE", "ICONURL", "SCREENSHOTURLS"):  # the public repository does not exist yet
        assert f'set(EXTENSION_{key} "")' in top, key
    assert "Status of the extension metadata" in (REPO / "README.md").read_text(encoding="utf-8")
    for path in MODULE.rglob("*.py"):
        assert "https://github.com/gasasegmenter" not in path.read_text(encoding="utf-8"), path


def test_model_files_are_bytes_in_every_checkout() -> None:
    """A Windows checkout with autocrlf must not change model.json (the catalogue pins its SHA-256)."""
    files = [
        "Resources/models/gasa-demo-btcv/model.json",
        "Resources/models/catalog.json",
        "Resources/models/gasa-demo-btcv/fold_all.safetensors",
        "GASASegmenter/Resources/SelfTest/expectedOrgans.json",
    ]
    command = ["git", "check-attr", "text", "--", *files]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    assert [line.rsplit(": ", 1)[1] for line in result.stdout.splitlines()] == ["unset"] * len(files)
