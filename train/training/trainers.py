"""``GASATrainer``: nnU-Net v2's trainer with a configurable schedule, an epoch log and CPU DDP.

Everything that shapes the model (loss, augmentation, optimiser, poly learning rate, deep supervision,
checkpoints, ``progress.png``) is nnU-Net's own. The subclass adds:

- the schedule (epochs, iterations per epoch, validation iterations) set from the command line;
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
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch.nn.parallel import DistributedDataParallel

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
