"""The panel binds under Slicer 5.10's parameter-node rules; the rules catch what Slicer would refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from slicerBindingRules import bindingProblems, readParameterNode, readUiBindings

MODULE = Path(__file__).resolve().parents[2] / "GASASegmenter"
DATA = Path(__file__).with_name("data")


def _problems(node: Path, ui: Path) -> list[str]:
    parameters = readParameterNode(node.read_text(encoding="utf-8"), node.name)
    return bindingProblems(parameters, readUiBindings(ui.read_text(encoding="utf-8")))


def test_the_panel_binds_under_slicers_rules() -> None:
    node = MODULE / "GASASegmenterLib" / "parameterNode.py"
    ui = MODULE / "Resources" / "UI" / "GASASegmenter.ui"
    parameters = readParameterNode(node.read_text(encoding="utf-8"))
    assert {"inputVolume", "device", "stepSize", "outputSegmentation"} <= set(parameters)
    assert _problems(node, ui) == []


def test_the_rules_refuse_the_panel_of_commit_5a2a1cc() -> None:
    problems = _problems(DATA / "widget-5a2a1cc.py.txt", DATA / "GASASegmenter-5a2a1cc.ui")
    assert len(problems) == 2, problems
    modelTitle, device = sorted(problems, key=lambda p: not p.startswith("modelTitle"))
    assert modelTitle.startswith("modelTitle (QComboBox modelComboBox): ComboBoxToStringableConnector requires")
    assert device.startswith("device (QComboBox deviceComboBox): ComboBoxToStringableConnector requires the Choice")


def _node(*fields: str) -> str:
    lines = "\n".join(f"    {field}" for field in fields)
    return (
        "from __future__ import annotations\n"
        "from pathlib import Path\n"
        "from typing import Annotated\n"
        "import slicer\n"
        "from slicer.parameterNodeWrapper import Choice, Maximum, Minimum, WithinRange, parameterNodeWrapper\n"
        "from GASACore.options import DeviceKind\n"
        f"@parameterNodeWrapper\nclass Node:\n{lines}\n"
    )


@pytest.mark.parametrize(
    ("field", "widget", "problem"),
    [
        ("value: bool = True", "QCheckBox", None),
        ("value: bool = True", "ctkCheckBox", None),
        ("value: bool = True", "QPushButton", None),
        ("value: int = 1", "QSpinBox", None),
        ("value: int = 1", "QSlider", "QSlider needs a bounded type"),
        ("value: Annotated[int, Minimum(0), Maximum(9)] = 1", "QSlider", None),
        ("value: float = 0.5", "ctkSliderWidget", "ctkSliderWidget needs a bounded type"),
        ("value: Annotated[float, WithinRange(0.1, 1.0)] = 0.5", "ctkSliderWidget", None),
        ("value: Annotated[float, WithinRange(0.1, 1.0)] = 2.0", "ctkSliderWidget", "outside [0.1, 1.0]"),
        ("value: float = 0.5", "QDoubleSpinBox", None),
        ("value: str = ''", "QComboBox", "requires the Choice annotation"),
        ("value: bool = True", "QComboBox", "requires the Choice annotation"),
        ("value: Annotated[str, Choice(['a', 'b'])] = 'a'", "QComboBox", None),
        ("value: Annotated[str, Choice(['a', 'b'])] = 'c'", "QComboBox", "'c' is not one of the choices"),
        ("value: DeviceKind = DeviceKind.AUTO", "QComboBox", None),
        ("value: str = ''", "QLineEdit", None),
        ("value: str = ''", "QPlainTextEdit", "no GUI connector"),
        ("value: str = ''", "ctkPathLineEdit", "no GUI connector"),
        ("value: Path = Path('.')", "ctkPathLineEdit", None),
        ("value: slicer.vtkMRMLScalarVolumeNode", "qMRMLNodeComboBox", None),
        ("value: slicer.vtkMRMLScalarVolumeNode | slicer.vtkMRMLLabelMapVolumeNode | None", "qMRMLNodeComboBox", None),
        ("value: slicer.vtkMRMLScalarVolumeNode", "QComboBox", "no GUI connector"),
        ("value: str = ''", "qMRMLNodeComboBox", "no GUI connector"),
    ],
)
def test_connector_rules(field: str, widget: str, problem: str | None) -> None:
    problems = bindingProblems(readParameterNode(_node(field)), [("value", widget, "w")])
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_names_and_types_that_cannot_be_bound() -> None:
    parameters = readParameterNode(_node("default: int = 0", "mapping: set[int]", "ok: bool = False"))
    bindings = [("ok", "QCheckBox", "a"), ("ok", "QCheckBox", "b"), ("missing", "QLineEdit", "c")]
    assert bindingProblems(parameters, bindings) == [
        "default: reserved name in a parameterNodeWrapper",
        "mapping: no serializer for set[int]",
        "ok (QCheckBox b): a is bound to the same parameter; only one is connected",
        "missing (QLineEdit c): the parameter node has no parameter 'missing' (connectGui raises ValueError)",
    ]
