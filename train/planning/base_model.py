"""A published nnU-Net v2 model as the start of a GASA training (``gasa-train train --init-from FOLDER``).

The GASA network is built on the base model's own plan (same patch, topology and blocks; GASA-UNet on a
``PlainConvUNet`` model, GASA-L on a ``ResidualEncoderUNet`` one), and the data set being trained is
pre-processed exactly as the base model's training data was: with the base's plans (spacing, resampling, CT
intensity statistics, reader). :func:`prepare_init_plans` therefore writes, into the data set's
``nnUNet_preprocessed`` folder,

1. ``<base plans>_from<base id>.json``: the base plans.json, renamed for this data set (nnU-Net's
   ``move_plans_between_datasets``, with its own data identifier so no existing pre-processed data is touched);
2. the pre-processed arrays for that plan (nnU-Net's ``preprocess``);
3. ``<base plans>_from<base id>_<variant>.json``: the GASA plans derived from it with the base backbone kept,

or, when they exist, checks that they are what the base model gives, and refuses to touch them otherwise.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from GASACore.bundle import ModelBundle, load_nnunet_results_folder, sha256_of
from GASACore.errors import ModelError
from GASACore.io import atomic_output
from GASACore.network import BlockOptions
from train.planning.gasa_plans import build_network_from_plans, derive_gasa_plans

__all__ = ["BaseModel", "init_plans_name", "prepare_init_plans", "read_base_model", "transferred_plans"]

logger = logging.getLogger(__name__)

_DATASET_ID = re.compile(r"^Dataset(\d{3})_")


@dataclass(frozen=True)
class BaseModel:
    """One fold of a published nnU-Net v2 results folder, read and checked.

    Attributes:
        model: the folder as GASACore reads it (architecture, labels, the chosen fold's checkpoint).
        plans: its ``plans.json``.
        dataset_json: its ``dataset.json``.
        configuration: the folder's configuration (``3d_fullres``).
    """

    model: ModelBundle
    plans: Mapping[str, Any]
    dataset_json: Mapping[str, Any]
    configuration: str

    @property
    def folder(self) -> Path:
        return self.model.root

    @property
    def fold(self) -> str:
        return self.model.folds[0].name

    @property
    def checkpoint(self) -> Path:
        return self.model.folds[0].path

    @property
    def trainer(self) -> str:
        return self.folder.name.split("__")[0]

    @property
    def plans_name(self) -> str:
        return str(self.plans.get("plans_name") or [*self.folder.name.split("__"), "", ""][1] or "nnUNetPlans")

    @property
    def dataset_name(self) -> str:
        """The nnU-Net data set the base was trained on (its results folder's parent, ``Dataset220_KiTS2023``)."""
        return self.folder.parent.name

    @property
    def licence(self) -> str | None:
        """The licence its ``dataset.json`` states (``licence`` or ``license``), if any."""
        value = self.dataset_json.get("licence") or self.dataset_json.get("license")
        return str(value) if value else None

    def record(self) -> dict[str, Any]:
        """What a training started from it writes down (``gasa_training.json``, then the bundle's record)."""
        return {
            "folder": str(self.folder),
            "name": self.folder.name,
            "trainer": self.trainer,
            "plans_name": self.plans_name,
            "configuration": self.configuration,
            "dataset_name": self.dataset_name,
            "dataset_json_name": self.dataset_json.get("name"),
            "network": self.model.architecture.name,
            "fold": self.fold,
            "checkpoint": self.checkpoint.name,
            "checkpoint_sha256": sha256_of(self.checkpoint),
            "licence": self.licence,
        }


def _pick_fold(model: ModelBundle, fold: str | None, target_fold: int | str) -> ModelBundle:
    if fold is not None:
        return model.select_folds([fold])
    names = [f.name for f in model.folds]
    for candidate in (f"fold_{target_fold}", "fold_all"):
        if candidate in names:
            return model.select_folds([candidate])
    if len(names) == 1:
        return model
    raise ModelError(f"base model {model.root} has folds {names}: choose the one to start from with --init-fold")


def read_base_model(
    folder: str | Path, *, fold: str | None = None, target_fold: int | str = 0, checkpoint: str | None = None
) -> BaseModel:
    """Read a plain nnU-Net v2 results folder as the base of a GASA training.

    Args:
        folder: ``<Trainer>__<plans>__<configuration>`` holding plans.json, dataset.json and ``fold_*``.
        fold: the base fold (``0``, ``fold_0``, ``all``); default: the fold being trained if the base has it,
            else ``fold_all``, else its only fold.
        target_fold: the fold that will be trained (for the default above).
        checkpoint: ``final`` or ``best``; default: final, best where the fold has no final.

    Raises:
        ModelError: not an nnU-Net folder GASACore reads, a network with a block already (GASA, ...), no such
            fold or checkpoint, or several folds and none chosen.
    """
    path = Path(folder).expanduser().resolve()
    if not (path / "plans.json").is_file() or not (path / "dataset.json").is_file():
        raise ModelError(f"--init-from must be an nnU-Net v2 results folder with plans.json and dataset.json: {path}")
    model = _pick_fold(
        load_nnunet_results_folder(path, read_checkpoint=False, checkpoint=checkpoint), fold, target_fold
    )
    if model.architecture.network.has_block:
        raise ModelError(
            f"--init-from needs a plain nnU-Net model (PlainConvUNet or ResidualEncoderUNet), got a "
            f"{model.architecture.network.description} in {path}"
        )
    plans = json.loads((path / "plans.json").read_text(encoding="utf-8"))
    dataset_json = json.loads((path / "dataset.json").read_text(encoding="utf-8"))
    return BaseModel(model, plans, dataset_json, str(model.metadata["nnunet"]["configuration"]))


def init_plans_name(base: BaseModel) -> str:
    """``nnUNetResEncUNetLPlans`` of ``Dataset220_KiTS2023`` -> ``nnUNetResEncUNetLPlans_from220``."""
    match = _DATASET_ID.match(base.dataset_name)
    tag = match.group(1) if match else re.sub(r"[^A-Za-z0-9]+", "", base.dataset_name) or "base"
    return f"{base.plans_name}_from{tag}"


def transferred_plans(base: BaseModel, dataset_name: str) -> dict[str, Any]:
    """The base plans for data set ``dataset_name``: its configuration only, renamed, own data identifier.

    The reader / writer stays the base's: the arrays must come in the axis order the base was trained on.

    Raises:
        ValueError: the configuration inherits from another one (3d_cascade_fullres): train on a full one.
    """
    config = copy.deepcopy(dict(base.plans["configurations"][base.configuration]))
    if "inherits_from" in config:
        raise ValueError(f"base configuration {base.configuration!r} inherits from another one; use a 3d_fullres model")
    name = init_plans_name(base)
    config["data_identifier"] = f"{name}_{base.configuration}"
    plans = copy.deepcopy(dict(base.plans))
    plans.update(dataset_name=dataset_name, plans_name=name, configurations={base.configuration: config})
    plans["gasa_base_model"] = {"folder": str(base.folder), "plans_name": base.plans_name}
    return plans


def _check_channels(base: BaseModel, dataset_json: Mapping[str, Any]) -> None:
    def channels(data: Mapping[str, Any]) -> list[str]:
        return [str(v) for v in dict(data.get("channel_names", data.get("modality", {}))).values()]

    if channels(base.dataset_json) != channels(dataset_json):
        raise ValueError(
            f"the data set's channels {channels(dataset_json)} must be the base model's {channels(base.dataset_json)}"
        )


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with atomic_output(path, overwrite=True) as staging:
        staging.write_text(json.dumps(data, indent=4) + "\n", encoding="utf-8")


def _matches(path: Path, expected: Mapping[str, Any]) -> bool:
    """Whether ``path`` holds ``expected`` (as JSON); raises when it holds something else."""
    if not path.is_file():
        return False
    if json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(expected)):
        return True
    raise ValueError(
        f"{path} exists and differs from the plans derived from the base model (with these --gasa-* options); it "
        "was written for another base model, other options or by hand: move it away to derive it again"
    )


def prepare_init_plans(
    base: BaseModel,
    dataset_name: str,
    variant: str,
    *,
    options: BlockOptions | None = None,
    num_processes: int = 2,
) -> str:
    """Pre-process ``dataset_name`` with the base model's plans and write the GASA plans on the base backbone.

    nnU-Net's folders must be configured (``nnUNet_raw`` too, when the data set is not pre-processed yet).

    Returns:
        The plans identifier to train (``<base plans>_from<id>_<variant>``).

    Raises:
        ValueError: other channels than the base's, or existing plans of that name that differ.
    """
    from nnunetv2.experiment_planning.plan_and_preprocess_api import preprocess
    from nnunetv2.paths import nnUNet_preprocessed

    plans = transferred_plans(base, dataset_name)
    gasa = derive_gasa_plans(plans, variant, options=options, configuration=base.configuration, keep_backbone=True)
    folder = Path(str(nnUNet_preprocessed)) / dataset_name
    plans_file, gasa_file = folder / f"{plans['plans_name']}.json", folder / f"{gasa['plans_name']}.json"
    plans_there, gasa_there = _matches(plans_file, plans), _matches(gasa_file, gasa)  # raise when they differ
    if plans_there and gasa_there:
        logger.info("%s and %s match base model %s: reusing them", plans_file.name, gasa_file.name, base.folder.name)
        return str(gasa["plans_name"])
    raw = Path(os.environ.get("nnUNet_raw", "")) / dataset_name / "dataset.json"  # noqa: SIM112 - nnU-Net's name
    if "nnUNet_raw" not in os.environ or not raw.is_file():
        raise ValueError(
            f"{dataset_name} must be in nnUNet_raw (pass --nnunet-raw) to be pre-processed with the base model's "
            f"plans; looked for {raw}"
        )
    dataset_json = json.loads(raw.read_text(encoding="utf-8"))
    _check_channels(base, dataset_json)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(plans_file, plans)
    logger.info("pre-processing %s with the plans of base model %s (%s)", dataset_name, base.folder, plans_file.name)
    dataset_id = int(dataset_name[len("Dataset") : len("Dataset") + 3])
    preprocess(
        [dataset_id], str(plans["plans_name"]), configurations=(base.configuration,), num_processes=[num_processes]
    )
    build_network_from_plans(gasa, dataset_json, base.configuration)  # checks that nnU-Net builds it
    _write_json(gasa_file, gasa)  # last: its presence says the pre-processing finished
    logger.info("wrote %s (%s on the base model's backbone)", gasa_file, variant)
    return str(gasa["plans_name"])
