"""Loading any model path, and saving GASASegmenter bundles.

Reading a bundle's description (``read_bundle``) is torch-free; loading weights and saving import torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from GASACore.bundle.cache import unpack_bundle_zip
from GASACore.bundle.integrity import sha256_of
from GASACore.bundle.jsonfile import read_json_file
from GASACore.bundle.model import SCHEMA_VERSION, ArchitectureSpec, FoldWeights, ModelBundle, ModelSource, WeightFormat
from GASACore.bundle.nnunet_folder import is_nnunet_results_folder, load_nnunet_results_folder
from GASACore.errors import ModelError
from GASACore.io.atomic import atomic_output
from GASACore.labels import Label, labels_from_json, labels_to_json
from GASACore.preprocessing.config import PreprocessingConfig

if TYPE_CHECKING:
    import torch

__all__ = ["load_model", "open_model", "read_bundle", "save_bundle"]


def load_model(
    path: str | Path,
    *,
    folds: Sequence[str | int] | None = None,
    verify: bool = True,
    checkpoint: str | None = None,
) -> ModelBundle:
    """Open a model: a bundle folder, a zipped bundle, or an nnU-Net v2 results folder.

    A zipped bundle is unpacked once into ``$GASA_HOME/cache/bundles/<sha256>/`` and reused
    (``GASACore.bundle.cache``).

    Args:
        path: the model location.
        folds: restrict to these nnU-Net fold folders (``0`` / ``"fold_0"``; ``"all"`` is the ``fold_all``
            folder); every fold when ``None``.
        verify: check every weight file's SHA-256 now (bundles), before anything runs.
        checkpoint: nnU-Net results folders only: ``"final"`` or ``"best"`` (``checkpoint_best.pth``) of every
            fold; ``None`` takes each fold's final checkpoint, its best one where it has no final.

    Raises:
        ModelError: missing or malformed model; ``BundleIntegrityError`` for a changed weight file.
    """
    location = Path(path).expanduser()
    if not location.exists():
        raise ModelError(f"model not found: {location} (expected a bundle folder, .zip or nnU-Net results folder)")
    model = open_model(location, read_checkpoint=True, checkpoint=checkpoint, folds=folds).select_folds(folds)
    if verify:
        model.verify()
    return model


def open_model(
    location: Path,
    *,
    read_checkpoint: bool,
    checkpoint: str | None = None,
    folds: Sequence[str | int] | None = None,
) -> ModelBundle:
    """The description of an existing model path (zips unpacked through the cache); no weights are read.

    ``read_checkpoint=False`` leaves an nnU-Net folder's mirror axes unread (``None``): reading them needs torch.
    ``checkpoint`` picks an nnU-Net folder's checkpoint (see :func:`load_model`); a bundle has one file per fold.
    ``folds`` limits the nnU-Net fold folders read (a bundle lists its folds; ``select_folds`` picks them).
    """
    if location.is_file():
        location = unpack_bundle_zip(location)
    if (location / "model.json").is_file():
        if checkpoint is not None:
            raise ModelError(
                f"{location} is a bundle (one weight file per fold): choose a checkpoint only for nnU-Net folders"
            )
        return read_bundle(location)
    if is_nnunet_results_folder(location):
        return load_nnunet_results_folder(location, read_checkpoint=read_checkpoint, checkpoint=checkpoint, folds=folds)
    raise ModelError(
        f"{location} is not a model: expected model.json (GASASegmenter bundle) or plans.json + dataset.json "
        "(nnU-Net v2 results folder)"
    )


def read_bundle(folder: Path) -> ModelBundle:
    """Parse ``folder/model.json`` (no weights are read)."""
    try:
        meta = read_json_file(folder / "model.json", what="model.json")
    except OSError as err:
        raise ModelError(f"cannot read {folder / 'model.json'}: expected a readable JSON file ({err})") from err
    if not isinstance(meta, dict) or meta.get("schema_version") != SCHEMA_VERSION:
        got = meta.get("schema_version") if isinstance(meta, dict) else type(meta).__name__
        raise ModelError(f"model.json schema_version must be {SCHEMA_VERSION}, got {got!r} (in {folder})")
    try:
        architecture = ArchitectureSpec.from_json(meta["architecture"])
        labels = labels_from_json(meta["labels"])
        folds = tuple(
            FoldWeights(str(f["name"]), _inside(folder, f["file"]), str(f["sha256"]), WeightFormat.SAFETENSORS)
            for f in meta["folds"]
        )
        inference = meta.get("inference", {})
        order = inference.get("regions_class_order")
        regions = inference.get("regions")
        preprocessing = meta["preprocessing"]
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ModelError):
            raise
        raise ModelError(f"model.json in {folder} is malformed: {type(err).__name__}: {err}") from err
    if not folds:
        raise ModelError(f"model.json in {folder} lists no folds")
    names = [fold.name for fold in folds]
    if len(set(names)) != len(names):
        raise ModelError(f"model.json in {folder} must list each fold once, got folds {names}")
    return ModelBundle(
        root=folder,
        metadata=meta,
        architecture=architecture,
        preprocessing=preprocessing,
        labels=labels,
        folds=folds,
        mirror_axes=tuple(int(a) for a in inference.get("mirror_axes", (0, 1, 2))),
        regions_class_order=tuple(int(r) for r in order) if order else None,
        source=ModelSource.BUNDLE,
        regions=tuple(tuple(int(v) for v in region) for region in regions) if regions else None,
        orientation=inference.get("orientation"),
    )


def _inside(folder: Path, relative: str) -> Path:
    candidate = (folder / relative).resolve()
    if folder.resolve() not in candidate.parents:
        raise ModelError(f"model.json names weight file {relative!r} outside its bundle folder")
    return candidate


def _strict_json(value: Any) -> Any:
    """``value`` with NaN and infinities (not valid JSON; nnU-Net's summaries hold them) replaced by ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    return value


def save_bundle(
    target: str | Path,
    *,
    metadata: Mapping[str, Any],
    architecture: ArchitectureSpec,
    preprocessing: PreprocessingConfig | Mapping[str, Any],
    labels: Sequence[Label],
    fold_weights: Mapping[str, Mapping[str, torch.Tensor]],
    mirror_axes: Sequence[int] = (0, 1, 2),
    regions_class_order: Sequence[int] | None = None,
    training: Mapping[str, Any] | None = None,
    regions: Sequence[Sequence[int]] | None = None,
    orientation: str | None = None,
) -> ModelBundle:
    """Write a bundle folder atomically (built in a temporary sibling folder, then renamed).

    Args:
        target: new folder; must not exist.
        metadata: ``name``, ``version``, ``description``, ``license``, ``citation``, ``intended_use``...
        architecture: the network and plan the weights belong to (checked against every fold).
        preprocessing: the model's ``PreprocessingConfig`` (or its JSON, validated); its patch size and
            channels must match ``architecture``.
        labels: foreground labels (values 1..K-1 for softmax models).
        fold_weights: fold name (``fold_0``...) -> state dict.
        mirror_axes: axes allowed for mirroring TTA.
        regions_class_order: region-based models only: the label each output channel paints.
        training: record of data, recipe and metrics.
        regions: region-based models: the label values each channel's region unites, as trained.
        orientation: the training images' orientation code (``"RAS"``) for models trained without mirroring:
            inputs are re-oriented to it (``None``: as nnU-Net, the array as stored).

    Returns:
        The saved bundle, re-read and verified.

    Raises:
        ModelError: ``target`` exists, no folds, invalid pre-processing (e.g. ``{"placeholder": true}``) or one
            that does not fit the network, or weights that do not fit it. Nothing is left behind.
    """
    from GASACore.bundle.weights import check_state_dict_fits, save_safetensors

    destination = Path(target)
    if destination.exists():
        raise ModelError(f"refusing to overwrite existing {destination}; choose a new bundle folder")
    if not fold_weights:
        raise ModelError("a bundle needs at least one fold of weights")
    probe = ModelBundle(
        destination,
        dict(metadata),
        architecture,
        preprocessing,
        tuple(labels),
        (),
        (),
        tuple(regions_class_order) if regions_class_order else None,
        regions=tuple(tuple(r) for r in regions) if regions else None,
        orientation=orientation,
    )
    network = probe.build_network()
    try:
        with atomic_output(destination, overwrite=False, is_dir=True) as staging:
            folds = []
            for name, state in fold_weights.items():
                check_state_dict_fits(network, state, f"fold {name}")
                file_name = f"{name}.safetensors"
                save_safetensors(state, staging / file_name)
                folds.append({"name": name, "file": file_name, "sha256": sha256_of(staging / file_name)})
            meta = {
                "schema_version": SCHEMA_VERSION,
                **{k: v for k, v in metadata.items() if k not in {"schema_version", "folds"}},
                "architecture": architecture.to_json(),
                "preprocessing": probe.preprocessing.to_json(),
                "inference": {
                    "mirror_axes": list(mirror_axes),
                    "regions_class_order": list(probe.regions_class_order) if probe.regions_class_order else None,
                    "regions": [list(region) for region in probe.regions] if probe.regions else None,
                    **({"orientation": probe.orientation} if probe.orientation else {}),
                },
                "labels": labels_to_json(labels),
                "folds": folds,
                "training": dict(training or {}),
            }
            text = json.dumps(_strict_json(meta), indent=2) + "\n"
            (staging / "model.json").write_text(text, encoding="utf-8")
    except FileExistsError as err:
        raise ModelError(
            f"refusing to overwrite {destination}, which appeared while saving; choose a new folder"
        ) from err
    return load_model(destination)
