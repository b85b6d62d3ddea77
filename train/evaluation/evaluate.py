"""Evaluate predicted label maps against reference label maps: per case, per class Dice and NSD.

Predictions and references are matched by case identifier (the file name without its extension), so an
nnU-Net prediction folder can be evaluated against the ``labelsTr`` folder it came from. Classes absent
from both prediction and reference give ``NaN`` for that case and are left out of the means (see
:mod:`train.evaluation.metrics`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import SimpleITK as sitk

from GASACore.io.formats import strip_suffix, volume_suffix
from train.evaluation.classes import EvaluationClass, resolve_classes
from train.evaluation.metrics import dice
from train.evaluation.surface import normalized_surface_dice

__all__ = [
    "CONVENTIONS",
    "NSD_DEFINITION",
    "CaseResult",
    "EvaluationResult",
    "evaluate_arrays",
    "evaluate_folders",
    "list_label_maps",
]

logger = logging.getLogger(__name__)

Metric = Literal["dice", "nsd"]

#: Human-readable statement of the empty-mask conventions, copied into every report.
CONVENTIONS = (
    "Class absent from both prediction and reference: NaN, excluded from the means. "
    "Class present in only one of them: Dice 0 and NSD 0. "
    "Means: per class over cases, then the mean of the class means."
)

#: What "NSD" means in every report.
NSD_DEFINITION = (
    "NSD: surface Dice at the class tolerance with boundary elements weighted by their area "
    "(Nikolov et al. 2018; DeepMind's surface-distance algorithm, as the official KiTS23 evaluation)."
)


def conventions_for(classes: Sequence[EvaluationClass]) -> str:
    """:data:`CONVENTIONS`, with the KiTS23 rule added when a class scores 1.0 for an empty-empty pair."""
    ones = [c.name for c in classes if c.both_empty == 1.0]
    if not ones:
        return CONVENTIONS
    return (
        f"{CONVENTIONS} Exception, the KiTS23 challenge's rule for {', '.join(ones)}: absent from both "
        "prediction and reference scores Dice 1 and NSD 1, included in the means."
    )


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else float("nan")


@dataclass(frozen=True)
class CaseResult:
    """Metrics of one case; ``dice`` and ``nsd`` follow the order of the result's classes."""

    case_id: str
    dice: tuple[float, ...]
    nsd: tuple[float, ...]


@dataclass(frozen=True)
class EvaluationResult:
    """Per case and per class Dice / NSD, with the classes (and their tolerances) they were computed for."""

    classes: tuple[EvaluationClass, ...]
    cases: tuple[CaseResult, ...]
    label_set: str | None = None

    def per_class(self, metric: Metric) -> dict[str, list[float]]:
        """Values of ``metric`` (``"dice"`` or ``"nsd"``) per class name, one per case (NaN kept)."""
        if metric not in ("dice", "nsd"):
            raise ValueError(f"metric must be 'dice' or 'nsd', got {metric!r}")
        return {c.name: [getattr(case, metric)[i] for case in self.cases] for i, c in enumerate(self.classes)}

    def class_means(self, metric: Metric) -> dict[str, float]:
        """Mean of ``metric`` per class over the cases where the class is defined (NaN if none)."""
        return {name: _nanmean(values) for name, values in self.per_class(metric).items()}

    def mean(self, metric: Metric) -> float:
        """Mean over classes of the class means (the paper's "mean" column)."""
        return _nanmean(list(self.class_means(metric).values()))

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON summary (NaN written as None)."""

        def clean(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {
            "label_set": self.label_set,
            "conventions": conventions_for(self.classes),
            "nsd_definition": NSD_DEFINITION,
            "classes": [
                {"name": c.name, "values": list(c.values), "nsd_tolerance_mm": c.tolerance_mm} for c in self.classes
            ],
            "mean": {m: clean(self.mean(m)) for m in ("dice", "nsd")},
            "class_means": {m: {k: clean(v) for k, v in self.class_means(m).items()} for m in ("dice", "nsd")},
            "cases": [
                {
                    "case": case.case_id,
                    "dice": {c.name: clean(v) for c, v in zip(self.classes, case.dice, strict=True)},
                    "nsd": {c.name: clean(v) for c, v in zip(self.classes, case.nsd, strict=True)},
                }
                for case in self.cases
            ],
        }


def evaluate_arrays(
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: Sequence[float],
    classes: Sequence[EvaluationClass],
    *,
    case_id: str = "case",
) -> CaseResult:
    """Dice and NSD (area-weighted surface Dice, :data:`NSD_DEFINITION`) of every class for one pair of label maps.

    Args:
        prediction: Integer label map.
        reference: Integer label map of the same shape.
        spacing: Voxel size in mm per array axis (reversed SimpleITK spacing for (z, y, x) arrays).
        classes: Classes to evaluate.
        case_id: Identifier stored in the result.

    Returns:
        The case's metrics in the order of ``classes``.
    """
    if prediction.shape != reference.shape:
        raise ValueError(
            f"prediction and reference of {case_id!r} must have one shape, got {prediction.shape} and {reference.shape}"
        )
    dices, nsds = [], []
    for cls in classes:
        pred_mask = np.isin(prediction, cls.values)
        ref_mask = np.isin(reference, cls.values)
        if not pred_mask.any() and not ref_mask.any():
            dices.append(cls.both_empty)
            nsds.append(cls.both_empty)
            continue
        dices.append(dice(pred_mask, ref_mask))
        nsds.append(normalized_surface_dice(pred_mask, ref_mask, spacing, cls.tolerance_mm))
    return CaseResult(case_id, tuple(dices), tuple(nsds))


def list_label_maps(folder: str | Path) -> dict[str, Path]:
    """Label-map files of a folder by case identifier: the file name without its suffix (GASACore's image and
    label-map suffixes: ``.nii.gz``, ``.nii``, ``.seg.nrrd``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"expected a folder of label maps, got {str(folder)!r} (not a directory)")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if volume_suffix(path) is not None and path.is_file() and not path.name.startswith("."):
            found[strip_suffix(path)] = path
    return found


def _read(path: Path) -> tuple[np.ndarray, tuple[float, ...], sitk.Image]:
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), tuple(reversed(image.GetSpacing())), image


def _check_geometry(case_id: str, pred: sitk.Image, ref: sitk.Image) -> None:
    if pred.GetSize() != ref.GetSize():
        raise ValueError(
            f"prediction of {case_id!r} must have the reference's size {ref.GetSize()}, got {pred.GetSize()}"
        )
    if not np.allclose(pred.GetSpacing(), ref.GetSpacing(), rtol=1e-4, atol=1e-5):
        raise ValueError(
            f"prediction of {case_id!r} must have the reference's spacing {ref.GetSpacing()}, got {pred.GetSpacing()}"
        )
    if not (
        np.allclose(pred.GetOrigin(), ref.GetOrigin(), atol=1e-2)
        and np.allclose(pred.GetDirection(), ref.GetDirection(), atol=1e-4)
    ):
        logger.warning(
            "prediction of %r: origin or direction differ from the reference's; evaluating voxelwise", case_id
        )


def evaluate_folders(
    pred_dir: str | Path,
    gt_dir: str | Path,
    *,
    label_set: Literal["btcv", "amos", "kits23"] | None = None,
    labels: Mapping[str, int | Sequence[int]] | None = None,
    tolerance_mm: float | Mapping[str, float] | None = None,
) -> EvaluationResult:
    """Evaluate every reference label map of ``gt_dir`` against the same-named prediction in ``pred_dir``.

    Args:
        pred_dir: Folder of predicted label maps (NIfTI / NRRD / MHA).
        gt_dir: Folder of reference label maps; every case here must have a prediction.
        label_set: ``"btcv"``, ``"amos"`` (one class per organ, NSD at 1 mm) or ``"kits23"`` (the three
            hierarchical classes with the official tolerances 1.0331 / 1.1329 / 1.1498 mm and the challenge's
            rule that a class absent from both scores 1).
        labels: Instead of ``label_set``: name -> value, or name -> list of values (a region).
        tolerance_mm: NSD tolerance (mm) for every class, or class name -> tolerance; None keeps the
            label set's (1 mm except KiTS23).
            Without ``label_set`` and ``labels`` the classes are the values found in the references.

    Returns:
        The per case results, sorted by case identifier.

    Raises:
        ValueError: If a folder is missing or empty, predictions are missing (all listed), or a
            prediction's size / spacing differs from its reference.
    """
    references = list_label_maps(gt_dir)
    predictions = list_label_maps(pred_dir)
    if not references:
        raise ValueError(f"expected reference label maps in {str(gt_dir)!r}, found none")
    missing = sorted(set(references) - set(predictions))
    if missing:
        raise ValueError(f"expected a prediction in {str(pred_dir)!r} for every reference case; missing: {missing}")
    extra = sorted(set(predictions) - set(references))
    if extra:
        logger.info("ignoring %d predictions without a reference: %s", len(extra), extra)
    loaded = {}
    if label_set is None and labels is None:
        loaded = {case_id: _read(path) for case_id, path in references.items()}
        present = set().union(*(np.unique(arr).tolist() for arr, _, _ in loaded.values()))
    else:
        present = set()
    classes = resolve_classes(label_set=label_set, labels=labels, tolerance_mm=tolerance_mm, present_values=present)
    results = []
    for case_id, ref_path in references.items():
        ref_arr, spacing, ref_image = loaded.pop(case_id, None) or _read(ref_path)
        pred_arr, _, pred_image = _read(predictions[case_id])
        _check_geometry(case_id, pred_image, ref_image)
        results.append(evaluate_arrays(pred_arr, ref_arr, spacing, classes, case_id=case_id))
        logger.debug("evaluated %s", case_id)
    return EvaluationResult(classes=classes, cases=tuple(results), label_set=label_set)
