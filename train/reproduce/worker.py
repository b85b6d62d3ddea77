"""One training of a reproduction, in its own process: ``python -m train.reproduce.worker ...``.

The runner starts it (plainly, or under ``torchrun`` for several GPUs) with ``nnUNet_results`` pointing at
the seed's results folder, so runs of different seeds never share a fold folder. It seeds Python, NumPy and
torch (rank ``r`` of a torchrun cohort with ``seed + r * RANK_SEED_STRIDE``, so that ranks draw different
patches; DDP gives every rank rank 0's initial weights), then calls
:func:`train.training.run_gasa_training` (nnU-Net's training, its final validation of the fold's cases,
``gasa_training.json``) and, on rank 0, writes where the fold went to ``--result``. nnU-Net's augmentation
worker processes draw their own seeds, as in nnU-Net, so runs are repeatable only up to them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["RANK_SEED_STRIDE", "main", "seed_everything", "worker_arguments"]

logger = logging.getLogger(__name__)

#: Seed offset between the ranks of one run.
RANK_SEED_STRIDE = 1_000_003


def seed_everything(seed: int) -> None:
    """Seed ``random``, NumPy and torch (CPU and every CUDA device) of this process."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def worker_arguments(
    dataset: str,
    *,
    network: str,
    fold: str,
    seed: int,
    device: str,
    schedule: Any,
    plans_name: str,
    result: Path,
    resume: bool,
) -> list[str]:
    """The command-line arguments of one worker (after ``-m train.reproduce.worker``)."""
    args = [
        dataset,
        "--variant", network,
        "--fold", fold,
        "--seed", str(seed),
        "--device", device,
        "--plans-name", plans_name,
        "--epochs", str(schedule.epochs),
        "--iterations", str(schedule.iterations_per_epoch),
        "--val-iterations", str(schedule.val_iterations_per_epoch),
        "--save-every", str(schedule.save_every),
        "--result", str(result),
    ]  # fmt: skip
    if resume:
        args.append("--continue")
    return args


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.reproduce.worker", description=__doc__)
    parser.add_argument("dataset")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--fold", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--device", choices=["cuda", "cpu"], required=True)
    parser.add_argument("--plans-name", default="nnUNetPlans")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--val-iterations", type=int, required=True)
    parser.add_argument("--save-every", type=int, required=True)
    parser.add_argument("--lr", type=float, help="initial learning rate when not nnU-Net's")
    parser.add_argument("--continue", dest="resume", action="store_true", help="resume the fold's checkpoint")
    parser.add_argument("--result", type=Path, required=True, help="JSON file receiving the fold folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Train one run; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from train.planning import configure_nnunet_paths

    configure_nnunet_paths(require=("nnUNet_preprocessed", "nnUNet_results"))
    from train.training import Schedule, TrainingRecipe, run_gasa_training

    seed_everything(args.seed + int(os.environ.get("RANK", "0")) * RANK_SEED_STRIDE)
    schedule = Schedule(args.epochs, args.iterations, args.val_iterations, args.save_every)
    run = run_gasa_training(
        args.dataset,
        variant=args.variant,
        fold=args.fold,
        device=args.device,
        schedule=schedule,
        continue_training=args.resume,
        base_plans_name=args.plans_name,
        recipe=TrainingRecipe(initial_lr=args.lr) if args.lr is not None else None,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        record = {
            "results_folder": str(run.results_folder),
            "fold_folder": str(run.fold_folder),
            "wall_time_s": round(run.wall_time_s, 1),
            "world_size": run.world_size,
        }
        args.result.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
