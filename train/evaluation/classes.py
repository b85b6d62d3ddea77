"""Evaluation classes: which label values form a class and the NSD tolerance used for it.

A class is a set of label values (a region): a plain organ is one value, KiTS23's hierarchical classes
are unions (kidney + masses = {1, 2, 3}, masses = {2, 3}, tumor = {2}).

Tolerances: the paper does not state the NSD tolerance for BTCV / AMOS, so 1 mm is used
(``DEFAULT_TOLERANCE_MM``) and written into every report; KiTS23 uses the official challenge tolerances
(``HEC_SD_TOLERANCES_MM`` of the kits23 repository's ``kits23/configuration/labels.py``) and the challenge's rule
for a class absent from both prediction and reference: Dice and NSD 1.0, kept in the means (the kits23
``compute_metrics_for_label``); other classes give NaN there and are left out of the means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from GASACore.labels import LABEL_SETS

__all__ = [
    "DEFAULT_TOLERANCE_MM",
    "KITS23_CLASSES",
    "KITS23_TOLERANCES_MM",
    "EvaluationClass",
    "resolve_classes",
]

#: NSD tolerance (mm) for classes without an official one (BTCV, AMOS, custom label sets).
DEFAULT_TOLERANCE_MM = 1.0

#: Official KiTS23 NSD tolerances (mm) of the three hierarchical evaluation classes (kits23 repository,
#: ``HEC_SD_TOLERANCES_MM``: kidney_and_mass, mass, tumor).
KITS23_TOLERANCES_MM: Mapping[str, float] = {
    "kidney and masses": 1.0330772532390826,
    "masses": 1.1328796488598762,
    "tumor": 1.1498198361434828,
}


@dataclass(frozen=True)
class EvaluationClass:
    """One evaluated class.

    Attributes:
        name: Display name (a CSV / table column).
        values: Label values whose union forms the class mask.
        tolerance_mm: NSD tolerance in mm.
        both_empty: Dice and NSD when the class is absent from both prediction and reference: NaN (left out
            of the means, the default) or 1.0 (the KiTS23 challenge's rule).
    """

    name: str
    values: tuple[int, ...]
    tolerance_mm: float
    both_empty: float = math.nan

    def __post_init__(self) -> None:
        if not self.values or any(int(v) != v or v <= 0 for v in self.values):
            raise ValueError(f"class {self.name!r} needs label values >= 1, got {self.values!r}")
        if not self.tolerance_mm >= 0:
            raise ValueError(f"class {self.name!r} needs a tolerance >= 0 mm, got {self.tolerance_mm!r}")
        if not (math.isnan(self.both_empty) or self.both_empty == 1.0):
            raise ValueError(f"class {self.name!r}: both_empty must be NaN or 1.0, got {self.both_empty!r}")


KITS23_CLASSES: tuple[EvaluationClass, ...] = (
    EvaluationClass("kidney and masses", (1, 2, 3), KITS23_TOLERANCES_MM["kidney and masses"], both_empty=1.0),
    EvaluationClass("masses", (2, 3), KITS23_TOLERANCES_MM["masses"], both_empty=1.0),
    EvaluationClass("tumor", (2,), KITS23_TOLERANCES_MM["tumor"], both_empty=1.0),
)


def _as_values(name: str, value: int | Sequence[int]) -> tuple[int, ...]:
    values = (value,) if isinstance(value, int) else tuple(value)
    if not all(isinstance(v, int) for v in values):
        raise ValueError(f"label {name!r} must map to an int or a list of ints, got {value!r}")
    return values


def resolve_classes(
    *,
    label_set: str | None = None,
    labels: Mapping[str, int | Sequence[int]] | None = None,
    tolerance_mm: float | Mapping[str, float] | None = None,
    present_values: Iterable[int] = (),
) -> tuple[EvaluationClass, ...]:
    """Build the evaluation classes from a label-set name, an explicit mapping, or the data.

    Args:
        label_set: ``"btcv"``, ``"amos"`` or ``"kits23"`` (KiTS23 gives the three hierarchical classes
            with official tolerances), or None.
        labels: Name -> label value, or name -> list of values for a region (dataset.json style);
            ``"background"`` is ignored. Used when ``label_set`` is None.
        tolerance_mm: One tolerance (mm) for every class, or class name -> tolerance for some classes;
            None keeps the label set's (1 mm unless KiTS23).
        present_values: Label values found in the reference; used (as ``label_N``) when neither
            ``label_set`` nor ``labels`` is given.

    Returns:
        The classes in label order.

    Raises:
        ValueError: On an unknown label set, both or malformed arguments, or no class at all.
    """
    if label_set is not None and labels is not None:
        raise ValueError(f"give label_set or labels, not both; got label_set={label_set!r} and labels={labels!r}")
    if label_set is not None:
        key = label_set.lower()
        if key not in LABEL_SETS:
            raise ValueError(f"label_set must be one of {sorted(LABEL_SETS)}, got {label_set!r}")
        if key == "kits23":
            classes = KITS23_CLASSES
        else:
            classes = tuple(
                EvaluationClass(label.name, (label.value,), DEFAULT_TOLERANCE_MM) for label in LABEL_SETS[key]
            )
    elif labels is not None:
        classes = tuple(
            EvaluationClass(name, _as_values(name, value), DEFAULT_TOLERANCE_MM)
            for name, value in labels.items()
            if name != "background"
        )
    else:
        values = sorted({int(v) for v in present_values if int(v) > 0})
        classes = tuple(EvaluationClass(f"label_{v}", (v,), DEFAULT_TOLERANCE_MM) for v in values)
    if not classes:
        raise ValueError("no class to evaluate: give a label set, a labels mapping, or references with labels > 0")
    return _with_tolerances(classes, tolerance_mm)


def _with_tolerances(
    classes: tuple[EvaluationClass, ...], tolerance_mm: float | Mapping[str, float] | None
) -> tuple[EvaluationClass, ...]:
    if tolerance_mm is None:
        return classes
    if not isinstance(tolerance_mm, Mapping):
        return tuple(replace(c, tolerance_mm=float(tolerance_mm)) for c in classes)
    unknown = sorted(set(tolerance_mm) - {c.name for c in classes})
    if unknown:
        raise ValueError(f"tolerance_mm names must be classes {[c.name for c in classes]}, got unknown {unknown}")
    return tuple(replace(c, tolerance_mm=float(tolerance_mm.get(c.name, c.tolerance_mm))) for c in classes)
