"""``GASATrainer``: nnU-Net v2's trainer with a configurable schedule, an epoch log and CPU DDP.

Everything that shapes the model (loss, augmentation, optimiser, poly learning rate, deep supervision,
checkpoints, ``progress.png``) is nnU-Net's own. The subclass adds:

- the schedule (epochs, iterations per epoch, validation iterations) set from the command line;
- a :class:`~train.training.recipe.TrainingRecipe` (optimiser, learning rate, foreground oversampling,
  spatial augmentation, mirroring, contrast-phase augmentation); nnU-Net's own when none is given, with the
  network's own learning rate where the registry gives one (nnMamba: 1e-4, as the paper);
- deep supervision off for networks that have none (V-Net, UNETR, nnMamba: ``NetworkSpec.deep_supervision``);
- ``epochs.jsonl`` in the fold folder: one JSON line per epoch (losses, pseudo-Dice, learning rate,
  epoch time), next to nnU-Net's ``training_log_*.txt`` and ``progress.png``;
- DDP on CPU with the gloo backend (nnU-Net assumes CUDA devices whenever torch.distributed is up);
- checkpoints that load with ``torch.load(weights_only=True)``: nnU-Net logs numpy scalars, which the
  safe unpickler refuses, so they are stored as Python floats.

nnU-Net looks trainers up by class name. To run ``nnUNetv2_predict`` on a folder trained with this
class, point ``nnUNet_extTrainer`` at this directory; GASACore loads such folders without it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from time import time
from typing import Any

import numpy as np
import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch.nn.parallel import DistributedDataParallel

from GASACore.network import network_for_class_name
from train.training.fov_augmentation import PartialFieldOfViewTransform
from train.training.phase_augmentation import ContrastPhaseTransform, shifts_by_label
from train.training.recipe import TrainingRecipe, recipe_for

__all__ = ["GASATrainer", "Schedule"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """Training length; nnU-Net's defaults are 1000 epochs x 250 iterations, 50 validation iterations."""

    epochs: int = 1000
    iterations_per_epoch: int = 250
    val_iterations_per_epoch: int = 50
    save_every: int = 50

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if int(value) < 1:
                raise ValueError(f"schedule {name} must be >= 1, got {value}")


class GASATrainer(nnUNetTrainer):
    """nnU-Net v2 trainer with a settable schedule (``apply_schedule``) and gloo DDP on CPU."""

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),  # noqa: B008 - nnU-Net's signature
    ) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        if self.is_ddp and device.type != "cuda":
            # nnU-Net moves every DDP rank to cuda:<rank>; keep the requested CPU device instead.
            self.device = device
            self.grad_scaler = None
        self._cpu_ddp = self.is_ddp and self.device.type != "cuda"
        self.network_spec = network_for_class_name(self.configuration_manager.network_arch_class_name)
        if not self.network_spec.deep_supervision:  # V-Net, UNETR, nnMamba: one output (nnU-Net's NoDeepSupervision)
            self.enable_deep_supervision = False
        self.recipe = recipe_for(
            self.network_spec.name,
            weight_decay=self.weight_decay,
            oversample_foreground=self.oversample_foreground_percent,
        )
        self.initial_lr = self.recipe.initial_lr  # nnU-Net's 1e-2, or the network's own (nnMamba: 1e-4)

    def apply_recipe(self, recipe: TrainingRecipe) -> None:
        """Set optimiser, sampling and augmentation before ``initialize`` (see :class:`TrainingRecipe`)."""
        if self.was_initialized:
            raise RuntimeError("apply_recipe must be called before the trainer is initialised")
        self.recipe = recipe
        self.initial_lr = recipe.initial_lr
        self.weight_decay = recipe.weight_decay
        self.oversample_foreground_percent = recipe.oversample_foreground

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, PolyLRScheduler]:
        if self.recipe.optimizer == "sgd":
            return super().configure_optimizers()
        optimizer = torch.optim.AdamW(self.network.parameters(), self.initial_lr, weight_decay=self.weight_decay)
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self) -> tuple:  # noqa: N802 - nnU-Net's name
        configured = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        rotation, dummy_2d, initial_patch, mirror_axes = configured
        if not dummy_2d:
            rotation = self.recipe.rotation_rad
        if not self.recipe.mirror:
            mirror_axes = None
            self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, initial_patch, mirror_axes

    def get_training_transforms(self, patch_size: Any, rotation_for_DA: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N803
        """nnU-Net's pipeline with the recipe's spatial probabilities and, optionally, contrast phases."""
        from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform

        compose = nnUNetTrainer.get_training_transforms(patch_size, rotation_for_DA, *args, **kwargs)
        transforms = compose.transforms
        for index, transform in enumerate(transforms):
            if isinstance(transform, SpatialTransform):
                transform.p_rotation = self.recipe.p_rotation
                transform.p_scaling = self.recipe.p_scaling
                transform.scaling = tuple(self.recipe.scaling)
                transform.p_elastic_deform = self.recipe.p_elastic
                added = [self._contrast_phase_transform(), self._partial_fov_transform()]
                transforms[index + 1 : index + 1] = [t for t in added if t is not None]
                break
        return compose

    def _partial_fov_transform(self) -> Any:
        """The partial field-of-view augmentation (wrapped with its probability), or ``None`` when off."""
        from batchgeneratorsv2.transforms.utils.random import RandomTransform

        if self.recipe.p_partial_fov <= 0:
            return None
        return RandomTransform(PartialFieldOfViewTransform(), apply_probability=self.recipe.p_partial_fov)

    def _contrast_phase_transform(self) -> Any:
        """The contrast-phase augmentation (wrapped with its probability), or ``None`` when it does not apply."""
        from batchgeneratorsv2.transforms.utils.random import RandomTransform

        is_ct = self.configuration_manager.normalization_schemes[0] == "CTNormalization"
        if self.recipe.p_contrast_phase <= 0 or not is_ct:
            return None
        tissues = shifts_by_label(self.dataset_json["labels"])
        if not tissues:
            return None
        std = float(self.plans_manager.foreground_intensity_properties_per_channel["0"]["std"])
        return RandomTransform(ContrastPhaseTransform(tissues, std), apply_probability=self.recipe.p_contrast_phase)

    def apply_schedule(self, schedule: Schedule) -> None:
        """Set epochs / iterations before ``initialize`` (the poly LR schedule reads ``num_epochs``)."""
        if self.was_initialized:
            raise RuntimeError("apply_schedule must be called before the trainer is initialised")
        self.num_epochs = schedule.epochs
        self.num_iterations_per_epoch = schedule.iterations_per_epoch
        self.num_val_iterations_per_epoch = schedule.val_iterations_per_epoch
        self.save_every = schedule.save_every

    def initialize(self) -> None:
        if not self._cpu_ddp or self.was_initialized:
            super().initialize()
            return
        # nnU-Net wraps the network with device_ids=[rank] (CUDA only): initialise as a single process,
        # then redo the DDP-specific parts for CPU (per-rank batch size, DDP-aware loss, CPU DDP wrapper).
        self.is_ddp = False
        try:
            super().initialize()
        finally:
            self.is_ddp = True
        self._set_batch_size_and_oversample()
        self.network = DistributedDataParallel(self.network)
        self.loss = self._build_loss()

    def save_checkpoint(self, filename: str) -> None:
        logging_state = self.logger.get_checkpoint()
        for key, values in logging_state.items():
            logging_state[key] = [_plain(v) for v in values]
        self._best_ema = _plain(self._best_ema)
        self.inference_allowed_mirroring_axes = _plain(self.inference_allowed_mirroring_axes)
        super().save_checkpoint(filename)

    def on_epoch_end(self) -> None:
        if self.local_rank == 0 and self.output_folder is not None:
            self._append_epoch_record()
        super().on_epoch_end()

    def _append_epoch_record(self) -> None:
        def last(key: str) -> Any:
            try:
                return self.logger.get_value(key, step=-1)
            except (IndexError, KeyError):
                return None

        start, end = last("epoch_start_timestamps"), time()
        dice = last("dice_per_class_or_region")
        record = {
            "epoch": int(self.current_epoch),
            "train_loss": _float(last("train_losses")),
            "val_loss": _float(last("val_losses")),
            "pseudo_dice": [_float(d) for d in dice] if dice is not None else None,
            "mean_fg_dice": _float(last("mean_fg_dice")),
            "ema_fg_dice": _float(last("ema_fg_dice")),
            "lr": _float(last("lrs")),
            "epoch_time_s": round(end - start, 3) if start is not None else None,
        }
        path = Path(self.output_folder) / "epochs.jsonl"
        with path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")


def _plain(value: Any) -> Any:
    """numpy scalars / arrays (nested in lists and tuples) -> Python numbers and lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _float(value: Any) -> float | None:
    if value is None:
        return None
    return round(float(value), 6)
