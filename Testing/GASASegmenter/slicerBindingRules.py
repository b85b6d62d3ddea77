"""Slicer 5.10's rules for binding a ``@parameterNodeWrapper`` class to a ``.ui`` file, without the application.

Written from Slicer's source (``Base/Python/slicer/parameterNodeWrapper``, tag v5.10.0, unchanged through
5.12): ``connectGui`` collects every widget with a ``SlicerParameterName`` property and, for each, takes the
*first* registered GUI connector whose ``canRepresent(widget, datatype)`` holds; that connector's ``create``
may still refuse the pair (raising, so the whole binding fails), and writing the parameter's current value
into the widget runs the parameter's validators. ``canRepresent`` compares the widget's exact class
(``type(widget) in (...)``): subclasses do not count. Parameters are read from the wrapper class's source
with :mod:`ast` and evaluated with stand-ins for the annotation classes of ``slicer.parameterNodeWrapper``
(which need Qt): the real node classes come from slicer-core. Not modelled: ``QColor`` and parameter packs,
which this module does not use.
"""

from __future__ import annotations

import ast
import enum
import importlib
import pathlib
import typing
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace, UnionType
from typing import Any

import slicer

__all__ = ["Parameter", "bindingProblems", "readParameterNode", "readUiBindings"]


# Stand-ins for the annotation classes of slicer.parameterNodeWrapper: they only hold their arguments.
@dataclass(frozen=True)
class Choice:
    choices: Any


@dataclass(frozen=True)
class WithinRange:
    minimum: Any
    maximum: Any


@dataclass(frozen=True)
class Minimum:
    minimum: Any


@dataclass(frozen=True)
class Maximum:
    maximum: Any


@dataclass(frozen=True)
class RangeBounds:
    minimum: Any
    maximum: Any


@dataclass(frozen=True)
class Default:
    value: Any


@dataclass(frozen=True)
class Decimals:
    value: int


@dataclass(frozen=True)
class SingleStep:
    value: Any


class FloatRange:
    pass


_WRAPPER_NAMES = {
    cls.__name__: cls
    for cls in (Choice, WithinRange, Minimum, Maximum, RangeBounds, Default, Decimals, SingleStep, FloatRange)
}
#: Names ``_processClass`` adds to the class: a parameter may not use them.
RESERVED = {
    "allParameters", "default", "isCached", "dataType", "getValue", "setValue", "connectGui",
    "connectParametersToGui", "disconnectGui", "StartModify", "EndModify", "AddObserver", "RemoveObserver",
    "Modified", "parameterNode",
}  # fmt: skip
PATH_TYPES = (pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePath, pathlib.PurePosixPath,
              pathlib.PureWindowsPath)  # fmt: skip
_MISSING = object()


@dataclass(frozen=True)
class Parameter:
    """One field of the wrapper: its unannotated type, its annotations and its default (if given)."""

    name: str
    type: Any
    annotations: tuple[Any, ...]
    default: Any = _MISSING

    def annotation(self, kind: type) -> Any:
        return next((a for a in self.annotations if isinstance(a, kind)), None)


def _namespace(tree: ast.Module) -> dict[str, Any]:
    """The names an annotation may use: real modules where they import without Qt, stand-ins otherwise."""
    names: dict[str, Any] = {"__builtins__": __builtins__, "slicer": slicer}
    stub = SimpleNamespace(**_WRAPPER_NAMES, parameterNodeWrapper=lambda cls=None, **_: cls, parameterPack=None)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for alias in node.names:
                bound = alias.asname or alias.name
                if module == "slicer.parameterNodeWrapper":
                    names[bound] = getattr(stub, alias.name, None)
                elif node.level == 0 and (module.split(".")[0] in {"typing", "pathlib", "enum", "GASACore"}):
                    names[bound] = getattr(importlib.import_module(module), alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in {"typing", "pathlib", "enum"}:
                    names[alias.asname or alias.name.split(".")[0]] = importlib.import_module(alias.name)
    return names


def _evaluate(expression: ast.expr, names: dict[str, Any], where: str) -> Any:
    try:
        return eval(compile(ast.Expression(expression), where, "eval"), names)
    except NameError as err:
        raise ValueError(f"{where}: {err} (only typing, pathlib, enum, GASACore and slicer names are known)") from err


def readParameterNode(source: str, filename: str = "<parameter node>") -> dict[str, Parameter]:
    """The fields of the (one) class decorated with ``@parameterNodeWrapper`` in ``source``."""
    tree = ast.parse(source, filename)
    names = _namespace(tree)
    classes = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any((d.id if isinstance(d, ast.Name) else getattr(d, "attr", "")) == "parameterNodeWrapper"
                for d in node.decorator_list)
    ]  # fmt: skip
    if len(classes) != 1:
        raise ValueError(f"{filename}: expected one @parameterNodeWrapper class, got {len(classes)}")
    parameters = {}
    for item in classes[0].body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            name = item.target.id
            annotated = _evaluate(item.annotation, names, f"{filename}: {name}")
            base, *annotations = typing.get_args(typing.Annotated[annotated, "stub"])[:-1]
            default = _evaluate(item.value, names, f"{filename}: {name} default") if item.value else _MISSING
            parameters[name] = Parameter(name, base, tuple(annotations), default)
    return parameters


def readUiBindings(uiText: str) -> list[tuple[str, str, str]]:
    """``(parameter, widget class, widget name)`` for every widget of a ``.ui`` with a ``SlicerParameterName``."""
    root = ET.fromstring(uiText)
    found = []
    for widget in root.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                found.append((prop.findtext("string") or "", widget.get("class") or "", widget.get("name") or ""))
    return found


def _isNode(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, slicer.vtkMRMLNode)


def _isNodeOrUnionOfNodes(t: Any) -> bool:
    if _isNode(t):
        return True
    if typing.get_origin(t) in (typing.Union, UnionType):
        return all(a is type(None) or _isNode(a) for a in typing.get_args(t))
    return False


def _isEnum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


@dataclass(frozen=True)
class Connector:
    """A registered GUI connector: the widget classes it takes, the types, and what ``create`` insists on."""

    name: str
    widgets: frozenset[str]
    takes: Callable[[Any], bool]
    requires: Callable[[Parameter, str], list[str]] = field(default=lambda p, w: [])


def _bounded(p: Parameter) -> bool:
    if p.annotation(WithinRange) is not None:
        return True
    return p.annotation(Minimum) is not None and p.annotation(Maximum) is not None


def _needsBounds(classes: set[str]) -> Callable[[Parameter, str], list[str]]:
    def check(p: Parameter, widget: str) -> list[str]:
        if widget in classes and not _bounded(p):
            return [f"{widget} needs a bounded type (WithinRange, or Minimum and Maximum)"]
        return []

    return check


def _needsChoice(p: Parameter, widget: str) -> list[str]:
    if p.annotation(Choice) is None:
        return [f"ComboBoxToStringableConnector requires the Choice annotation for {p.type.__name__} on a {widget}"]
    return []


def _needsRangeBounds(p: Parameter, widget: str) -> list[str]:
    return [] if p.annotation(RangeBounds) is not None else [f"{widget} needs a RangeBounds annotation"]


#: The connectors of Slicer 5.10, in their registration order (the first that can represent a pair is used).
CONNECTORS = (
    Connector("QCheckBoxToBoolConnector", frozenset({"QCheckBox", "ctkCheckBox"}), lambda t: t is bool),
    Connector("QCheckablePushButtonToBoolConnector", frozenset({"QPushButton"}), lambda t: t is bool),
    Connector("ctkCheckablePushButtonToBoolConnector", frozenset({"ctkCheckablePushButton"}), lambda t: t is bool),
    Connector("QSliderOrSpinBoxToIntConnector", frozenset({"QSlider", "QSpinBox"}), lambda t: t is int,
              _needsBounds({"QSlider"})),
    Connector("QDoubleSpinBoxCtkSliderWidgetToFloatIntConnector",
              frozenset({"QDoubleSpinBox", "ctkSliderWidget", "qMRMLSliderWidget", "ctkDoubleSlider",
                         "ctkDoubleSpinBox", "qMRMLSpinBox"}),
              lambda t: t in (float, int), _needsBounds({"ctkSliderWidget", "qMRMLSliderWidget"})),
    Connector("QComboBoxToStringableConnector", frozenset({"QComboBox", "ctkComboBox"}),
              lambda t: t in (int, float, str, bool), _needsChoice),
    Connector("QComboBoxToEnumConnector", frozenset({"QComboBox", "ctkComboBox"}), _isEnum),
    Connector("QLineEditToStrConnector", frozenset({"QLineEdit"}), lambda t: t is str),
    Connector("QLabelToStrConnector", frozenset({"QLabel"}), lambda t: t is str),
    Connector("QTextEditPlainTextToStrConnector", frozenset({"QTextEdit"}), lambda t: t is str),
    Connector("ctkRangeWidgetToRangeConnector", frozenset({"ctkRangeWidget", "ctkDoubleRangeSlider",
                                                           "qMRMLRangeWidget"}),
              lambda t: t is FloatRange, _needsRangeBounds),
    Connector("ctkPathLineEditToPathConnector", frozenset({"ctkPathLineEdit"}), lambda t: t in PATH_TYPES),
    Connector("ctkDirectoryButtonToPathConnector", frozenset({"ctkDirectoryButton"}), lambda t: t in PATH_TYPES),
    Connector("qMRMLNodeComboBoxToNodeConnector", frozenset({"qMRMLNodeComboBox"}), _isNodeOrUnionOfNodes),
)  # fmt: skip


def _serializable(t: Any) -> bool:
    if t in (int, float, str, bool, type(None), typing.Any, FloatRange, *PATH_TYPES) or _isNode(t) or _isEnum(t):
        return True
    origin = typing.get_origin(t)
    if origin in (list, tuple, dict, typing.Union, UnionType):
        return all(_serializable(a) for a in typing.get_args(t) if a is not Ellipsis)
    return t in (list, dict)


def _valueProblems(p: Parameter) -> list[str]:
    """What the validators say about the default, which connectGui writes into the widget first."""
    if p.default is _MISSING or p.default is None:
        return []
    choice, within = p.annotation(Choice), p.annotation(WithinRange)
    problems = []
    if choice is not None and p.default not in list(choice.choices):
        problems.append(f"default {p.default!r} is not one of the choices {list(choice.choices)}")
    if within is not None and not within.minimum <= p.default <= within.maximum:
        problems.append(f"default {p.default!r} is outside [{within.minimum}, {within.maximum}]")
    return problems


def bindingProblems(parameters: dict[str, Parameter], bindings: list[tuple[str, str, str]]) -> list[str]:
    """Why ``connectGui`` would raise (or bind wrongly) for these parameters and ``.ui`` bindings; ``[]`` if fine."""
    problems = [f"{name}: reserved name in a parameterNodeWrapper" for name in parameters if name in RESERVED]
    problems += [f"{p.name}: no serializer for {p.type!r}" for p in parameters.values() if not _serializable(p.type)]
    seen: dict[str, str] = {}
    for name, widgetClass, widgetName in bindings:
        where = f"{name} ({widgetClass} {widgetName})"
        if name in seen:
            problems.append(f"{where}: {seen[name]} is bound to the same parameter; only one is connected")
        seen[name] = widgetName
        parameter = parameters.get(name)
        if parameter is None:
            problems.append(f"{where}: the parameter node has no parameter {name!r} (connectGui raises ValueError)")
            continue
        connector = next((c for c in CONNECTORS if widgetClass in c.widgets and c.takes(parameter.type)), None)
        if connector is None:
            problems.append(f"{where}: no GUI connector takes {parameter.type!r} to a {widgetClass}")
            continue
        problems += [f"{where}: {p}" for p in [*connector.requires(parameter, widgetClass), *_valueProblems(parameter)]]
    return problems
