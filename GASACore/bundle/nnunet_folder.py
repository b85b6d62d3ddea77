"""Reading an nnU-Net v2 results folder (plans.json, dataset.json, fold_*/checkpoint_final.pth or _best.pth).

Supports every network of ``GASACore.network.NETWORKS`` as nnU-Net plans it (PlainConvUNet,
ResidualEncoderUNet as in ``nnUNetResEncUNet*Plans``, GASACore's GASA networks), any fold folder (``fold_0``
... and ``fold_all``), ``checkpoint_final.pth`` or, where a fold has none or it is asked for,
``checkpoint_best.pth``. Labels follow nnU-Net's ``LabelManager``: an ``ignore`` label is no output; a
region-based model (KiTS23's kidney / masses / tumor) outputs one channel per region, and the label each
channel paints is named by what it stands for (``GASACore.labels.region_labels``: kidney, tumour, cyst).
Torch is imported only to read a checkpoint's mirror axes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from GASACore.bundle.jsonfile import read_json_file
from GASACore.bundle.model import ArchitectureSpec, FoldWeights, ModelBundle, ModelSource, WeightFormat
from GASACore.errors import ModelError
from GASACore.labels import LABEL_SETS, Label, label_set_of_regions, region_labels
from GASACore.network.nnunet_plans import architecture_from_nnunet
from GASACore.preprocessing.config import PreprocessingConfig

__all__ = ["CHECKPOINTS", "checkpoint_file_name", "is_nnunet_results_folder", "load_nnunet_results_folder"]

logger = logging.getLogger(__name__)

#: The checkpoints nnU-Net writes per fold, by short name; ``final`` is used, ``best`` where a fold has no final.
CHECKPOINTS = {"final": "checkpoint_final.pth", "best": "checkpoint_best.pth"}


def checkpoint_file_name(checkpoint: str) -> str:
    """``"best"`` or ``"checkpoint_best.pth"`` -> ``"checkpoint_best.pth"`` (likewise ``final``).

    Raises:
        ModelError: another name.
    """
    name = CHECKPOINTS.get(checkpoint, checkpoint)
    if name not in CHECKPOINTS.values():
        choices = sorted([*CHECKPOINTS, *CHECKPOINTS.values()])
        raise ModelError(f"checkpoint must be one of {choices}, got {checkpoint!r}")
    return name


def is_nnunet_results_folder(path: Path) -> bool:
    return (path / "plans.json").is_file() and (path / "dataset.json").is_file()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = read_json_file(path, what=path.name)
    except OSError as err:
        raise ModelError(f"cannot read {path}: expected a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _configuration_name(folder: Path, plans: dict[str, Any]) -> str:
    parts = folder.name.split("__")
    if len(parts) == 3 and parts[2] in plans.get("configurations", {}):
        return parts[2]
    for candidate in ("3d_fullres", "3d_lowres"):
        if candidate in plans.get("configurations", {}):
            logger.warning("could not read the configuration from folder name %r; using %s", folder.name, candidate)
            return candidate
    found = sorted(plans.get("configurations", {})) if isinstance(plans.get("configurations"), dict) else []
    named = f"'{parts[2]}' (the folder name's), " if len(parts) == 3 else ""
    raise ModelError(
        f"expected the configuration {named}3d_fullres or 3d_lowres in {folder / 'plans.json'}, found {found}"
    )


def _architecture(config: dict[str, Any], num_inputs: int, num_classes: int) -> ArchitectureSpec:
    network = architecture_from_nnunet(config)
    return ArchitectureSpec(network.name, network.plan, num_inputs, num_classes, network.block_options)


def _labels_from_dataset(
    dataset: dict[str, Any],
) -> tuple[list[Label], int, tuple[int, ...] | None, tuple[tuple[int, ...], ...] | None]:
    """Labels, number of network outputs and, for region-based models, the class order and the regions.

    As nnU-Net's ``LabelManager``: ``ignore`` is no output and must be the highest value (every other label's
    plus one), and the model is region-based when a label maps to more than one value (then
    ``regions_class_order`` is required).
    """
    raw = dataset.get("labels")
    if not isinstance(raw, dict) or "background" not in raw:
        raise ModelError("dataset.json 'labels' must map names to values and include 'background'")
    if "ignore" in raw and (isinstance(raw["ignore"], (list, tuple, bool)) or not isinstance(raw["ignore"], int)):
        raise ModelError(f"dataset.json 'ignore' label must be one integer value, got {raw['ignore']!r}")
    entries = [(name, value) for name, value in raw.items() if name not in ("background", "ignore")]
    values = [tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else (value,))) for _, value in entries]
    highest = max([0, *(v for region in values for v in region)])
    if "ignore" in raw and raw["ignore"] != highest + 1:
        raise ModelError(
            f"dataset.json 'ignore' label must be the highest label value ({highest + 1}, as nnU-Net requires), "
            f"got {raw['ignore']}"
        )
    if all(len(v) == 1 for v in values):  # softmax over background + labels
        return (
            [_named_label(name, v[0]) for (name, _), v in zip(entries, values, strict=True)],
            len(entries) + 1,
            None,
            None,
        )
    order = dataset.get("regions_class_order")
    if not isinstance(order, (list, tuple)) or len(order) != len(entries):
        raise ModelError(
            f"dataset.json defines {len(entries)} regions, so 'regions_class_order' must list {len(entries)} label "
            f"values, got {order!r}"
        )
    regions, order = tuple(values), tuple(int(v) for v in order)
    label_set = label_set_of_regions(regions)
    if label_set is not None:
        labels = list(region_labels(regions, order, LABEL_SETS[label_set]))
        logger.debug("regions %s are %s's: labels %s", regions, label_set, [label.name for label in labels])
    else:
        labels = [_named_label(name, painted) for (name, _), painted in zip(entries, order, strict=True)]
    return labels, len(entries), order, regions


def _named_label(name: str, value: int) -> Label:
    """A label named as in dataset.json, with the colour and terminology of a known label of that name."""
    known = {label.name.replace(" ", "_").lower(): label for labels in LABEL_SETS.values() for label in labels}
    match = known.get(name.replace(" ", "_").lower())
    color = match.color if match else _fallback_color(value)
    return Label(value, name.replace("_", " "), color, match.terminology if match else None)


def _fallback_color(value: int) -> tuple[int, int, int]:
    palette = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180))
    return palette[(value - 1) % len(palette)]


def _allowed_mirror_axes(checkpoint: Path) -> tuple[int, ...]:
    """The checkpoint's ``inference_allowed_mirroring_axes`` (memory-mapped read; all axes when absent). Torch."""
    from GASACore.bundle.weights import read_nnunet_checkpoint

    axes = read_nnunet_checkpoint(checkpoint, mmap=True).get("inference_allowed_mirroring_axes", (0, 1, 2))
    return tuple(int(a) for a in axes) if axes else ()


def _fold_checkpoints(folder: Path, checkpoint: str | None, only: Sequence[str | int] | None) -> list[FoldWeights]:
    """Every ``fold_*`` with the checkpoint asked for (``final``, falling back to ``best``, when ``None``).

    A fold without it is left out; that is an error when a checkpoint was asked for and the fold is in ``only``
    (every fold when ``only`` is empty).
    """
    wanted = checkpoint_file_name(checkpoint) if checkpoint is not None else None
    candidates = (wanted,) if wanted else tuple(CHECKPOINTS.values())
    requested = {str(n) if str(n).startswith("fold_") else f"fold_{n}" for n in only} if only else None
    folds, lacking = [], []
    for fold_dir in sorted(p for p in folder.glob("fold_*") if p.is_dir()):
        found = next((fold_dir / n for n in candidates if (fold_dir / n).is_file()), None)
        if found is None:
            if requested is None or fold_dir.name in requested:
                lacking.append(fold_dir.name)
            continue
        if wanted is None and found.name != CHECKPOINTS["final"]:
            logger.info("%s has no %s; using %s", fold_dir, CHECKPOINTS["final"], found.name)
        folds.append(FoldWeights(fold_dir.name, found, None, WeightFormat.NNUNET_CHECKPOINT))
    if wanted is not None and lacking:
        raise ModelError(f"folds {lacking} of nnU-Net results folder {folder} have no {wanted}")
    if not folds:
        raise ModelError(f"no fold_*/checkpoint_final.pth (or checkpoint_best.pth) in nnU-Net results folder {folder}")
    return folds


def load_nnunet_results_folder(
    folder: Path,
    *,
    read_checkpoint: bool = True,
    checkpoint: str | None = None,
    folds: Sequence[str | int] | None = None,
) -> ModelBundle:
    """Describe an nnU-Net v2 results folder as a ``ModelBundle`` (no weights are read here).

    Args:
        folder: ``nnUNet_results/DatasetXXX/<Trainer>__<plans>__<configuration>``.
        read_checkpoint: read the first fold checkpoint's allowed mirror axes (needs torch); ``False``
            leaves ``mirror_axes`` as ``None`` (torch-free description).
        checkpoint: ``"final"`` / ``"best"`` (or the file names ``checkpoint_final.pth`` / ``_best.pth``): that
            checkpoint of every fold; ``None``: each fold's final checkpoint, its best one where it has no final.
        folds: the folds that will be used (``0``, ``"fold_0"``, ``"all"``; every one when ``None``): only they
            must have the checkpoint asked for. Use ``ModelBundle.select_folds`` to pick them.

    Raises:
        ModelError: unreadable JSON, a plan GASACore cannot build, labels nnU-Net would refuse, no fold
            checkpoint, or a fold without the checkpoint asked for.
    """
    plans = _read_json(folder / "plans.json")
    dataset = _read_json(folder / "dataset.json")
    configuration = _configuration_name(folder, plans)
    num_inputs = len(dataset.get("channel_names", dataset.get("modality", {"0": "CT"})))
    labels, num_outputs, order, regions = _labels_from_dataset(dataset)
    try:
        config = plans["configurations"][configuration]
        architecture = _architecture(config, num_inputs, num_outputs)
        preprocessing = PreprocessingConfig.from_nnunet(plans, configuration, dataset)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ModelError):
            raise
        message = f"plans.json in {folder} is not a usable nnU-Net v2 plan: {type(err).__name__}: {err}"
        raise ModelError(message) from err
    if "Reorient" in str(plans.get("image_reader_writer", "")):
        logger.warning(
            "%s was trained on images reoriented to RAS (%s); GASACore reads images in their stored orientation, "
            "so its results hold for RAS-stored inputs only",
            folder.name,
            plans["image_reader_writer"],
        )
    fold_weights = _fold_checkpoints(folder, checkpoint, folds)
    mirror_axes = _allowed_mirror_axes(fold_weights[0].path) if read_checkpoint else None
    trainer, plans_name = [*folder.name.split("__"), ""][:2]
    metadata = {
        "name": folder.name,
        "description": f"nnU-Net v2 model {folder.parent.name}/{folder.name}",
        "nnunet": {
            "configuration": configuration,
            "trainer": trainer,
            "plans_name": plans.get("plans_name", plans_name),
            "dataset_name": dataset.get("name", folder.parent.name),
            "dataset_licence": dataset.get("licence") or dataset.get("license"),
            "checkpoints": sorted({fold.path.name for fold in fold_weights}),
            "ignore_label": dataset["labels"].get("ignore"),
        },
    }
    return ModelBundle(
        root=folder,
        metadata=metadata,
        architecture=architecture,
        preprocessing=preprocessing,
        labels=tuple(labels),
        folds=tuple(fold_weights),
        mirror_axes=mirror_axes,
        regions_class_order=order,
        source=ModelSource.NNUNET,
        regions=regions,
    )
