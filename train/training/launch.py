"""``gasa-train train``: run nnU-Net v2 training of a GASA (or plain nnU-Net) plan through its Python API.

Single process: ``gasa-train train 501 --variant gasa-unet --fold 0 --device cuda``.
Multi-GPU (DDP): ``torchrun --nproc_per_node=4 -m train.cli train 501 --variant gasa-unet --fold 0``;
torchrun sets ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` and this module initialises the process group
(NCCL on CUDA, gloo on CPU). nnU-Net then splits the global batch over the ranks.

From a published nnU-Net model: ``gasa-train train 501 --variant gasa-l --init-from RESULTS_FOLDER``
(:class:`InitFrom`): the data set is pre-processed with the base's plans, the GASA network is built on the
base's plan and starts from its weights with the same output (:mod:`train.training.init_from`), then trains
with the same recipe.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from GASACore.bundle import load_nnunet_checkpoint
from GASACore.network import GASABlockOptions
from train.planning.base_model import BaseModel, prepare_init_plans, read_base_model
from train.planning.gasa_plans import GASA_VARIANTS, TRAIN_VARIANTS, plans_name_for
from train.planning.nnunet_env import dataset_folder_name
from train.training.init_from import same_labels, transfer_base_weights
from train.training.recipe import TrainingRecipe
from train.training.trainers import GASATrainer, Schedule

__all__ = ["TRAIN_VARIANTS", "InitFrom", "TrainingRun", "parse_fold", "results_folder", "run_gasa_training"]

logger = logging.getLogger(__name__)

RECORD_NAME = "gasa_training.json"


@dataclass(frozen=True)
class TrainingRun:
    """Where a training wrote its fold and how long this session took."""

    results_folder: Path
    fold_folder: Path
    wall_time_s: float
    world_size: int


@dataclass(frozen=True)
class InitFrom:
    """Start the GASA network from a published nnU-Net v2 model (``--init-from``).

    Attributes:
        folder: the base's results folder (``<Trainer>__<plans>__<configuration>``).
        fold: its fold to start from; default: the trained fold if it has it, else ``fold_all``, else its only one.
        checkpoint: ``final`` or ``best``; default: final, best where the fold has no final.
        options: the GASA block's options (the paper's when ``None``).
        num_processes: processes for pre-processing the data set with the base's plans.
    """

    folder: Path
    fold: str | None = None
    checkpoint: str | None = None
    options: GASABlockOptions | None = None
    num_processes: int = 2


def parse_fold(fold: str | int) -> int | str:
    """``"0"``..``"4"`` -> int, ``"all"`` stays; anything else raises ``ValueError``."""
    if str(fold) == "all":
        return "all"
    try:
        value = int(fold)
    except ValueError as err:
        raise ValueError(f"fold must be an integer (0-4 for 5-fold CV) or 'all', got {fold!r}") from err
    if value < 0:
        raise ValueError(f"fold must be >= 0 or 'all', got {value}")
    return value


def _plans_identifier(variant: str, base_plans_name: str) -> str:
    if variant not in TRAIN_VARIANTS:
        raise ValueError(f"variant must be one of {list(TRAIN_VARIANTS)}, got {variant!r}")
    return base_plans_name if variant == "nnunet" else plans_name_for(base_plans_name, variant)


def results_folder(
    dataset_name: str, variant: str, base_plans_name: str = "nnUNetPlans", configuration: str = "3d_fullres"
) -> Path:
    """``nnUNet_results/DatasetXXX/GASATrainer__<plans>__<configuration>``."""
    from nnunetv2.paths import nnUNet_results

    plans = _plans_identifier(variant, base_plans_name)
    return Path(str(nnUNet_results)) / dataset_name / f"{GASATrainer.__name__}__{plans}__{configuration}"


def _maybe_init_distributed(device: torch.device) -> int:
    """Initialise torch.distributed when started by torchrun; returns the world size."""
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or dist.is_initialized():
        return dist.get_world_size() if dist.is_initialized() else 1
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local_rank} needs a GPU, only {torch.cuda.device_count()} visible")
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    logger.info("DDP rank %d of %d (%s)", dist.get_rank(), world_size, dist.get_backend())
    return world_size


def _load_trainer(
    dataset_name: str,
    plans_identifier: str,
    configuration: str,
    fold: int | str,
    device: torch.device,
    continue_training: bool,
) -> GASATrainer:
    from nnunetv2.paths import nnUNet_preprocessed

    folder = Path(str(nnUNet_preprocessed)) / dataset_name
    plans_file = folder / f"{plans_identifier}.json"
    if not plans_file.is_file():
        raise FileNotFoundError(f"plans {plans_file} not found: run `gasa-train plan {dataset_name}` first")
    plans = json.loads(plans_file.read_text(encoding="utf-8"))
    if configuration not in plans.get("configurations", {}):
        raise ValueError(
            f"{plans_file.name} has no configuration {configuration!r}; has {sorted(plans['configurations'])}"
        )
    plans["continue_training"] = continue_training
    dataset_json = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    return GASATrainer(plans=plans, configuration=configuration, fold=fold, dataset_json=dataset_json, device=device)


def _write_record(
    trainer: GASATrainer,
    variant: str,
    schedule: Schedule,
    started: float,
    world_size: int,
    init: dict[str, Any] | None = None,
) -> float:
    """Append this session to ``fold_N/gasa_training.json``; returns its wall time in seconds."""
    elapsed = time.time() - started
    path = Path(trainer.output_folder) / RECORD_NAME
    previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    init = init or previous.get("init_from")
    sessions = list(previous.get("sessions", []))
    sessions.append(
        {
            "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": round(elapsed, 1),
            "epochs_done": int(trainer.current_epoch),
            "device": str(trainer.device),
            "world_size": world_size,
            "torch": torch.__version__,
        }
    )
    record: dict[str, Any] = {
        "variant": variant,
        "trainer": type(trainer).__name__,
        "plans": trainer.plans_manager.plans_name,
        "configuration": trainer.configuration_name,
        "fold": trainer.fold,
        "schedule": asdict(schedule),
        "batch_size": trainer.configuration_manager.batch_size,
        "patch_size": list(trainer.configuration_manager.patch_size),
        "spacing": list(trainer.configuration_manager.spacing),
        "initial_lr": trainer.initial_lr,
        "weight_decay": trainer.weight_decay,
        "recipe": trainer.recipe.to_json(),
        "sessions": sessions,
        "total_wall_time_s": round(sum(s["wall_time_s"] for s in sessions), 1),
        "epochs_time_s": _epochs_time(trainer),
    }
    if init:
        record["init_from"] = init
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return elapsed


def _epochs_time(trainer: GASATrainer) -> float | None:
    """Sum of all epochs' durations from nnU-Net's log (kept in checkpoints, so it survives interrupted sessions)."""
    state = trainer.logger.get_checkpoint()
    starts, ends = state.get("epoch_start_timestamps", []), state.get("epoch_end_timestamps", [])
    if not starts or not ends:
        return None
    return round(float(sum(end - start for start, end in zip(starts, ends, strict=False))), 1)


def run_gasa_training(
    dataset: str | int,
    *,
    variant: str = "gasa-unet",
    fold: int | str = 0,
    device: str = "cuda",
    schedule: Schedule | None = None,
    continue_training: bool = False,
    validate: bool = True,
    base_plans_name: str = "nnUNetPlans",
    configuration: str = "3d_fullres",
    init_from: InitFrom | None = None,
    recipe: TrainingRecipe | None = None,
) -> TrainingRun:
    """Train one fold; on rank 0 also runs nnU-Net's final validation and writes ``gasa_training.json``.

    Args:
        dataset: id or name of a planned and pre-processed data set.
        variant: ``gasa-unet``, ``gasa-l`` or ``nnunet`` (nnU-Net's base plans).
        fold: 0-4 (nnU-Net's 5-fold split) or ``"all"`` (train on every case).
        device: ``cuda`` or ``cpu``.
        schedule: epochs / iterations; nnU-Net's 1000 x 250 when ``None``.
        continue_training: resume from ``checkpoint_final`` / ``latest`` / ``best`` of the fold folder.
        validate: run the sliding-window validation that writes ``fold_N/validation/summary.json``.
        base_plans_name: plans the GASA plans were derived from (ignored with ``init_from``).
        configuration: nnU-Net configuration (GASA plans carry ``3d_fullres`` only).
        init_from: start from a published nnU-Net model (its plans, pre-processing and weights); the variant
            must be a GASA one. Refused when the fold already holds a checkpoint, unless resuming it.
        recipe: optimiser, sampling and augmentation, recorded in ``gasa_training.json``; when ``None``: the
            recorded one when resuming, else nnU-Net's.

    Raises:
        ValueError: bad arguments, plans or base model (the message says which).
        FileNotFoundError: the plans are missing.
    """
    from nnunetv2.run.run_training import maybe_load_checkpoint

    if device not in ("cuda", "cpu"):
        raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu")
    torch_device = torch.device(device)
    schedule = schedule or Schedule()
    fold = parse_fold(fold)
    name = dataset_folder_name(dataset)
    world_size = _maybe_init_distributed(torch_device)
    started = time.time()
    base, plans_identifier = None, _plans_identifier(variant, base_plans_name)
    if init_from is not None:
        base, plans_identifier = _prepare_base(init_from, name, variant, fold, configuration)
    trainer = _load_trainer(name, plans_identifier, configuration, fold, torch_device, continue_training)
    trainer.apply_schedule(schedule)
    recipe = recipe or (_recorded_recipe(trainer) if continue_training else None)
    if recipe is not None:
        trainer.apply_recipe(recipe)
    maybe_load_checkpoint(trainer, continue_training, False)
    init = None
    if base is not None:
        init = _start_from_base(trainer, base) if not trainer.was_initialized else _check_same_base(trainer, base)
    trainer.run_training()
    if validate:
        trainer.perform_actual_validation(False)
    elapsed = time.time() - started
    if trainer.local_rank == 0:
        elapsed = _write_record(trainer, variant, schedule, started, world_size, init)
    _maybe_destroy_distributed()
    return TrainingRun(Path(trainer.output_folder_base), Path(trainer.output_folder), elapsed, world_size)


def _recorded_recipe(trainer: GASATrainer) -> TrainingRecipe | None:
    """The recipe an earlier session of this fold recorded (a resumed training keeps its recipe)."""
    path = Path(trainer.output_folder) / RECORD_NAME
    recorded = json.loads(path.read_text(encoding="utf-8")).get("recipe") if path.is_file() else None
    return TrainingRecipe.from_json(recorded) if recorded else None


def _prepare_base(
    init: InitFrom, dataset_name: str, variant: str, fold: int | str, configuration: str
) -> tuple[BaseModel, str]:
    """Read the base model and (rank 0) pre-process the data set with its plans; the GASA plans identifier."""
    import torch.distributed as dist

    if variant not in GASA_VARIANTS:
        choices = list(GASA_VARIANTS)
        raise ValueError(
            f"--init-from builds a GASA network on the base's plan: variant must be one of {choices}, got {variant!r}"
        )
    base = read_base_model(init.folder, fold=init.fold, target_fold=fold, checkpoint=init.checkpoint)
    if base.configuration != configuration:
        raise ValueError(f"base model {base.folder.name} is a {base.configuration} model; train {configuration} ones")
    identifier = None
    if int(os.environ.get("RANK", "0")) == 0:
        identifier = prepare_init_plans(
            base, dataset_name, variant, options=init.options, num_processes=init.num_processes
        )
    if dist.is_available() and dist.is_initialized():
        shared = [identifier]
        dist.broadcast_object_list(shared, src=0)
        identifier = shared[0]
    return base, str(identifier)


def _start_from_base(trainer: GASATrainer, base: BaseModel) -> dict[str, Any]:
    """Initialise the trainer and load the base weights into its GASA network; the record of what was done."""
    fold_dir = Path(trainer.output_folder)
    names = ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth")
    existing = [name for name in names if (fold_dir / name).is_file()]
    if existing:
        raise ValueError(
            f"{fold_dir} already holds a training ({', '.join(existing)}): pass --continue to resume it, or move it "
            "away to start again from the base model"
        )
    trainer.initialize()
    copy_heads = same_labels(base.dataset_json, trainer.dataset_json)
    if not copy_heads:
        logger.warning("the data set's labels differ from the base model's: its segmentation heads start fresh")
    transfer = transfer_base_weights(trainer.network, load_nnunet_checkpoint(base.checkpoint), copy_heads=copy_heads)
    trainer.print_to_log_file(f"started from base model {base.folder} ({base.fold}/{base.checkpoint.name})")
    heads = "copied" if copy_heads else "fresh: the data set's labels differ from the base model's"
    return {**base.record(), "heads": heads, "weights": transfer.to_json()}


def _check_same_base(trainer: GASATrainer, base: BaseModel) -> dict[str, Any] | None:
    """When resuming, the recorded base must be this one (the record is kept as it is)."""
    path = Path(trainer.output_folder) / RECORD_NAME
    recorded = json.loads(path.read_text(encoding="utf-8")).get("init_from") if path.is_file() else None
    if recorded and recorded.get("checkpoint_sha256") != base.record()["checkpoint_sha256"]:
        raise ValueError(f"{trainer.output_folder} was started from {recorded.get('folder')}, not {base.folder}")
    return recorded


def _maybe_destroy_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
