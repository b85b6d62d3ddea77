"""``gasa-train export``: an nnU-Net v2 results folder -> a GASASegmenter model bundle.

The bundle gets the network and pre-processing read from ``plans.json`` / ``dataset.json`` (via
``GASACore.bundle.load_nnunet_results_folder``), labels with names, colours and SNOMED CT codes from a
GASACore label set (matched by value with ``dataset.json``; for a region-based model such as KiTS23's, the
label each region channel paints, named by what it stands for: kidney, tumour, cyst), the regions and their
class order, one safetensors file per fold with its SHA-256, and a ``training`` record: data set, recipe,
validation metrics, training time and, for a training started ``--init-from`` a published nnU-Net model, that
base model and its licence (also stated in the bundle's ``license`` and ``description``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from GASACore.bundle import ModelBundle, load_nnunet_results_folder, save_bundle
from GASACore.labels import LABEL_SETS, Label, region_labels
from train.planning.gasa_plans import plan_of

__all__ = ["ExportMetadata", "base_model_record", "export_results_folder", "match_labels", "training_record"]

logger = logging.getLogger(__name__)

ExportMetadata = Mapping[str, Any]

_PAPER_CITATION = (
    "GASA-UNet: Global Axial Self-Attention U-Net for 3D Medical Image Segmentation (the method); "
    "Isensee et al., nnU-Net, Nature Methods 2021 (the training framework)."
)


def match_labels(
    dataset_labels: Mapping[str, Any], label_set: str, regions_class_order: Sequence[int] | None = None
) -> list[Label]:
    """The label set's entries for the outputs of ``dataset.json`` ``labels`` (``ignore`` is no output).

    Plain labels are matched by value. Region-based labels (a label of several values, e.g. KiTS23's kidney
    {1, 2, 3}, masses {2, 3}, tumor 2) give one label per region channel: the value it paints
    (``regions_class_order``), named by the one value it stands for (``GASACore.labels.region_labels``).

    Raises:
        ValueError: unknown label set, a value the label set does not define, region-based labels without a
            class order, or a region channel that does not stand for one label of the set.
    """
    if label_set not in LABEL_SETS:
        raise ValueError(f"label set must be one of {sorted(LABEL_SETS)}, got {label_set!r}")
    entries = {name: value for name, value in dataset_labels.items() if name not in ("background", "ignore")}
    if any(isinstance(value, (list, tuple)) and len(value) > 1 for value in entries.values()):
        if not regions_class_order:
            raise ValueError(f"region-based labels {entries} need dataset.json 'regions_class_order', got none")
        try:
            return list(region_labels(list(entries.values()), regions_class_order, LABEL_SETS[label_set]))
        except ValueError as err:
            raise ValueError(f"region-based labels {entries} do not match label set {label_set!r}: {err}") from err
    by_value = {label.value: label for label in LABEL_SETS[label_set]}
    labels: list[Label] = []
    for name, raw in entries.items():
        value = int(raw[0]) if isinstance(raw, (list, tuple)) else int(raw)
        if value not in by_value:
            raise ValueError(
                f"dataset.json label {name!r}={raw} is not in label set {label_set!r} "
                f"(values {sorted(by_value)}); pick the label set the data set was converted to"
            )
        match = by_value[value]
        if match.name.replace(" ", "_").lower() != str(name).replace(" ", "_").lower():
            logger.warning("dataset.json calls label %s %r; the bundle uses %r", value, name, match.name)
        labels.append(match)
    return sorted(labels, key=lambda label: label.value)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:
        logger.warning("ignoring unreadable %s", path)
        return None


def _validation_metrics(fold_dir: Path, names: Mapping[int, str]) -> dict[str, Any] | None:
    summary = _read_json(fold_dir / "validation" / "summary.json")
    if summary is None:
        return None
    per_class = {}
    for key, values in summary.get("mean", {}).items():
        value = int(key) if str(key).lstrip("-").isdigit() else key
        label = names.get(value, str(key)) if isinstance(value, int) else str(key)
        per_class[label] = {"dice": values.get("Dice"), "iou": values.get("IoU"), "n_ref": values.get("n_ref")}
    dice_values = [
        v["dice"] for v in per_class.values() if isinstance(v["dice"], (int, float)) and v["dice"] == v["dice"]
    ]
    return {
        "source": "nnU-Net final validation (fold_N/validation/summary.json), sliding window with mirroring",
        "mean_dice": summary.get("foreground_mean", {}).get("Dice"),
        "mean_dice_present_classes": sum(dice_values) / len(dice_values) if dice_values else None,
        "per_class": per_class,
        "cases": len(summary.get("metric_per_case", [])),
    }


def training_record(
    results: Path, bundle: ModelBundle, dataset: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Data set, recipe, per-fold validation metrics and training time of a results folder."""
    plans = _read_json(results / "plans.json") or {}
    names = {label.value: label.name for label in bundle.labels}
    folds: dict[str, Any] = {}
    recipe: dict[str, Any] = {}
    for fold in bundle.folds:
        fold_dir = fold.path.parent
        record = _read_json(fold_dir / "gasa_training.json") or {}
        if record and not recipe:
            recipe = {
                k: record[k]
                for k in (
                    "variant",
                    "trainer",
                    "plans",
                    "configuration",
                    "schedule",
                    "batch_size",
                    "patch_size",
                    "spacing",
                    "initial_lr",
                    "weight_decay",
                )
                if k in record
            }
        folds[fold.name] = {
            "checkpoint": fold.path.name,
            "training_time_s": record.get("epochs_time_s") or record.get("total_wall_time_s"),
            "training_time_note": "sum of nnU-Net's epoch durations (all sessions, including interrupted ones)",
            "sessions": record.get("sessions"),
            "validation": _validation_metrics(fold_dir, names),
        }
    if not recipe:
        trainer, plans_name, configuration = [*results.name.split("__"), "", "", ""][:3]
        recipe = {"trainer": trainer, "plans": plans_name, "configuration": configuration}
    recipe["framework"] = "nnU-Net v2 (augmentation, SGD + poly LR, Dice + CE, deep supervision)"
    recipe["gasa"] = plans.get("gasa")
    recipe["plan"] = plan_of(plans)  # nnunet (nnU-Net's planner), paper-btcv, patchXxYxZ
    return {
        "dataset": {
            "name": dataset.get("name", results.parent.name),
            "nnunet_dataset": results.parent.name,
            "num_training_cases": dataset.get("numTraining"),
            "description": dataset.get("description"),
            "reference": dataset.get("reference"),
            "licence": dataset.get("licence") or dataset.get("license"),
        },
        "recipe": recipe,
        "folds": folds,
        **dict(extra or {}),
    }


def base_model_record(bundle: ModelBundle, base_license: str | None = None) -> dict[str, Any] | None:
    """The base model a training started from (``--init-from``), from its folds' ``gasa_training.json``.

    Args:
        bundle: the results folder as read.
        base_license: the base's licence as the user states it; overrides its dataset.json licence.

    Raises:
        ValueError: ``base_license`` for a training that did not start from a base model.
    """
    for fold in bundle.folds:
        base = (_read_json(fold.path.parent / "gasa_training.json") or {}).get("init_from")
        if base:
            base = dict(base)
            if base_license:
                base.update(licence=base_license, licence_source="--base-license")
            else:
                base["licence_source"] = "the base model's dataset.json" if base.get("licence") else None
            return base
    if base_license:
        raise ValueError(f"--base-license is for trainings started --init-from a base model; {bundle.root} has none")
    return None


def _describe_base(meta: dict[str, Any], base: Mapping[str, Any]) -> None:
    """State the base model in the bundle's ``description`` and ``license`` (in place)."""
    where = f"{base.get('dataset_name')}/{base.get('name')}"
    meta["description"] = (
        f"{meta['description'].rstrip('.')}. Started from the nnU-Net v2 model {where} "
        f"({base.get('fold')}, {base.get('checkpoint')})."
    )
    licence = base.get("licence") or "licence unknown: check it with its publisher before any use"
    meta["license"] = (
        f"{meta['license'].rstrip('.')}. Base model {where}: {licence} (its terms apply to these weights)."
    )


def export_results_folder(
    results: str | Path,
    target: str | Path,
    *,
    label_set: str,
    metadata: ExportMetadata | None = None,
    folds: Sequence[str] | None = None,
    training_extra: Mapping[str, Any] | None = None,
    checkpoint: str | None = None,
    base_license: str | None = None,
    orientation: str | None = None,
) -> ModelBundle:
    """Write a verified bundle from an nnU-Net v2 results folder.

    Args:
        results: ``nnUNet_results/DatasetXXX/<Trainer>__<plans>__<configuration>``.
        target: new bundle folder (must not exist).
        orientation: the training images' ITK orientation code (``RAS``): inputs are re-oriented to it before
            inference. For models trained without mirroring; ``None`` keeps nnU-Net's behaviour.
        label_set: ``btcv``, ``amos`` or ``kits23``.
        metadata: model.json fields (``name``, ``version``, ``description``, ``license``, ``citation``,
            ``intended_use``...); sensible defaults for missing ones.
        folds: fold names to export (``fold_0``, ``fold_all``...); every fold with a checkpoint when ``None``.
        training_extra: extra entries for the training record (e.g. a caveat about the labels).
        checkpoint: ``final`` or ``best`` of every fold; default: final, best where a fold has no final.
        base_license: licence of the base model of an ``--init-from`` training (default: its dataset.json's).

    Returns:
        The saved bundle, re-read and SHA-256 verified.

    Raises:
        ValueError: labels that do not match the label set, or ``base_license`` without a base model.
        ModelError: an unreadable results folder, a missing fold or checkpoint, an existing ``target``.
    """
    folder = Path(results).expanduser().resolve()
    source = load_nnunet_results_folder(folder, checkpoint=checkpoint)
    if folds:
        source = source.select_folds(list(folds))
    dataset = _read_json(folder / "dataset.json") or {}
    labels = match_labels(dataset.get("labels", {}), label_set, source.regions_class_order)
    base = base_model_record(source, base_license)
    weights = {fold.name: source.load_fold(fold) for fold in source.folds}
    meta = {
        "name": Path(target).name,
        "version": "0.1.0",
        "description": f"{source.architecture.name} trained with nnU-Net v2 on {folder.parent.name}",
        "license": "see training data licence",
        "citation": _PAPER_CITATION,
        "intended_use": "research only; not for clinical use",
        **dict(metadata or {}),
    }
    if base:
        _describe_base(meta, base)
    extra = {**({"base_model": base} if base else {}), **dict(training_extra or {})}
    training = training_record(folder, source, dataset, extra)
    bundle = save_bundle(
        target,
        metadata=meta,
        architecture=source.architecture,
        preprocessing=source.preprocessing,
        labels=labels,
        fold_weights=weights,
        mirror_axes=source.mirror_axes,
        regions_class_order=source.regions_class_order,
        training=training,
        regions=source.regions,
        orientation=orientation,
    )
    logger.info("exported %s (%d folds) to %s", folder.name, len(weights), bundle.root)
    return bundle
