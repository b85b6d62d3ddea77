"""nnU-Net v2 training of GASA plans: the trainer subclass and the launcher (CPU, CUDA, DDP)."""

from __future__ import annotations

from train.training.init_from import WeightTransfer, same_labels, transfer_base_weights, unwrap_network
from train.training.launch import (
    TRAIN_VARIANTS,
    InitFrom,
    TrainingRun,
    parse_fold,
    results_folder,
    run_gasa_training,
)
from train.training.recipe import TrainingRecipe
from train.training.trainers import GASATrainer, Schedule

__all__ = [
    "TRAIN_VARIANTS",
    "GASATrainer",
    "InitFrom",
    "Schedule",
    "TrainingRecipe",
    "TrainingRun",
    "WeightTransfer",
    "parse_fold",
    "results_folder",
    "run_gasa_training",
    "same_labels",
    "transfer_base_weights",
    "unwrap_network",
]
