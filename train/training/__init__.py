"""nnU-Net v2 training of GASA plans: the trainer subclass and the launcher (CPU, CUDA, DDP)."""

from __future__ import annotations

from train.training.launch import TRAIN_VARIANTS, TrainingRun, parse_fold, results_folder, run_gasa_training
from train.training.trainers import GASATrainer, Schedule

__all__ = [
    "TRAIN_VARIANTS",
    "GASATrainer",
    "Schedule",
    "TrainingRun",
    "parse_fold",
    "results_folder",
    "run_gasa_training",
]
