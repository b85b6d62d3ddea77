"""Reading an nnU-Net v2 results folder (plans.json, dataset.json, fold_N/checkpoint_final.pth).

Supports every network of ``GASACore.network.NETWORKS`` as nnU-Net plans it (PlainConvUNet,
ResidualEncoderUNet, GASACore's GASA networks). Torch is imported only to read a checkpoint's mirror axes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from GASACore.bundle.model import ArchitectureSpec, FoldWeights, ModelBundle, ModelSource, WeightFormat
from GASACore.errors import ModelError
from GASACore.labels import LABEL_SETS, Label
from GASACore.network.nnunet_plans import architecture_from_nnunet
from GASACore.preprocessing.config import PreprocessingConfig

__all__ = ["is_nnunet_results_folder", "load_nnunet_results_folder"]

logger = logging.getLogger(__name__)

_CHECKPOINT_NAMES = ("checkpoint_final.pth", "checkpoint_best.pth")


def is_nnunet_results_folder(path: Path) -> bool:
    return (path / "plans.json").is_file() and (path / "dataset.json").is_file()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read {path}: expected a JSON file ({err})") from err


def _configuration_name(folder: Path, plans: dict[str, Any]) -> str:
    parts = folder.name.split("__")
    if len(parts) == 3 and parts[2] in plans.get("configurations", {}):
        return parts[2]
    for candidate in ("3d_fullres", "3d_lowres"):
        if candidate in plans.get("configurations", {}):
            logger.warning("could not read the configuration from folder name %r; using %s", folder.name, candidate)
            return candidate
    raise ModelError(f"no 3D configuration found in {folder / 'plans.json'}")


def _architecture(config: dict[str, Any], num_inputs: int, num_classes: int) -> ArchitectureSpec:
    network = architecture_from_nnunet(config)
    return ArchitectureSpec(network.name, network.plan, num_inputs, num_classes, network.block_options)


def _labels_from_dataset(dataset: dict[str, Any]) -> tuple[list[Label], int, tuple[int, ...] | None]:
    """Labels, number of network outputs and, for region-based models, the regions' class order."""
    raw = dataset.get("labels")
    if not isinstance(raw, dict) or "background" not in raw:
        raise ModelError("dataset.json 'labels' must map names to values and include 'background'")
    known = {label.name.replace(" ", "_").lower(): label for labels in LABEL_SETS.values() for label in labels}
    regions = dataset.get("regions_class_order")
    entries = [(name, value) for name, value in raw.items() if name != "background"]
    labels: list[Label] = []
    for index, (name, value) in enumerate(entries):
        label_value = int(regions[index]) if regions else int(value)
        match = known.get(name.replace(" ", "_").lower())
        color = match.color if match else _fallback_color(label_value)
        labels.append(Label(label_value, name.replace("_", " "), color, match.terminology if match else None))
    if regions:
        return labels, len(entries), tuple(int(r) for r in regions)
    return labels, len(raw), None


def _fallback_color(value: int) -> tuple[int, int, int]:
    palette = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180))
    return palette[(value - 1) % len(palette)]


def _allowed_mirror_axes(checkpoint: Path) -> tuple[int, ...]:
    """The checkpoint's ``inference_allowed_mirroring_axes`` (memory-mapped read; all axes when absent). Torch."""
    from GASACore.bundle.weights import read_nnunet_checkpoint

    axes = read_nnunet_checkpoint(checkpoint, mmap=True).get("inference_allowed_mirroring_axes", (0, 1, 2))
    return tuple(int(a) for a in axes) if axes else ()


def load_nnunet_results_folder(folder: Path, *, read_checkpoint: bool = True) -> ModelBundle:
    """Describe an nnU-Net v2 results folder as a ``ModelBundle`` (no weights are read here).

    Args:
        folder: ``nnUNet_results/DatasetXXX/<Trainer>__<plans>__<configuration>``.
        read_checkpoint: read the first fold checkpoint's allowed mirror axes (needs torch); ``False``
            leaves ``mirror_axes`` as ``None`` (torch-free description).

    Raises:
        ModelError: unreadable JSON, a plan GASACore cannot build, or no fold checkpoint.
    """
    plans = _read_json(folder / "plans.json")
    dataset = _read_json(folder / "dataset.json")
    configuration = _configuration_name(folder, plans)
    num_inputs = len(dataset.get("channel_names", dataset.get("modality", {"0": "CT"})))
    labels, num_outputs, regions = _labels_from_dataset(dataset)
    try:
        config = plans["configurations"][configuration]
        architecture = _architecture(config, num_inputs, num_outputs)
        preprocessing = PreprocessingConfig.from_nnunet(plans, configuration, dataset)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ModelError):
            raise
        message = f"plans.json in {folder} is not a usable nnU-Net v2 plan: {type(err).__name__}: {err}"
        raise ModelError(message) from err
    folds = []
    for fold_dir in sorted(folder.glob("fold_*")):
        checkpoint = next((fold_dir / n for n in _CHECKPOINT_NAMES if (fold_dir / n).is_file()), None)
        if checkpoint is not None:
            folds.append(FoldWeights(fold_dir.name, checkpoint, None, WeightFormat.NNUNET_CHECKPOINT))
    if not folds:
        raise ModelError(f"no fold_*/checkpoint_final.pth in nnU-Net results folder {folder}")
    mirror_axes = _allowed_mirror_axes(folds[0].path) if read_checkpoint else None
    metadata = {
        "name": folder.name,
        "description": f"nnU-Net v2 model {folder.parent.name}/{folder.name}",
        "nnunet": {
            "configuration": configuration,
            "plans_name": plans.get("plans_name"),
            "dataset_name": dataset.get("name", folder.parent.name),
            "dataset_licence": dataset.get("licence") or dataset.get("license"),
        },
    }
    return ModelBundle(
        root=folder,
        metadata=metadata,
        architecture=architecture,
        preprocessing=preprocessing,
        labels=tuple(labels),
        folds=tuple(folds),
        mirror_axes=mirror_axes,
        regions_class_order=regions,
        source=ModelSource.NNUNET,
    )
