"""Execute one run of a reproduction: train it in a worker process, then evaluate its fold's predictions.

Training: ``python -m train.reproduce.worker`` (one process), or the same module under ``torchrun``
(``python -m torch.distributed.run --standalone --nproc_per_node N``) for several GPUs, the launch path of
``gasa-train train``. Its output goes to ``<out>/<dataset>/logs/<run>.log``; a failed run raises with the
log's last lines and leaves its state ``started``, so ``--continue`` resumes it from its last checkpoint.

Evaluation: nnU-Net's final validation writes the fold's validation cases, predicted, into
``fold_N/validation``; they are scored against the data set's reference label maps (nnU-Net's
``gt_segmentations`` copy of ``labelsTr``) by :func:`train.evaluation.evaluate_folders` (Dice and the paper's
NSD) with the table column's label set, and the reports go to ``<out>/<dataset>/eval/<run>/``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.reproduce.plan import RunKey
from train.reproduce.worker import worker_arguments

__all__ = ["RunContext", "evaluate_run", "metrics_record", "reference_subset", "train_run", "worker_command"]

logger = logging.getLogger(__name__)

_LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class RunContext:
    """What every run of one table on one data set shares.

    Attributes:
        dataset: nnU-Net data set name (``Dataset017_BTCV``).
        dataset_key: the table column (``btcv``), also the evaluation's label set.
        folder: ``<out>/<dataset_key>``: state, logs, the seeds' results folders, evaluations.
        preprocessed: ``nnUNet_preprocessed/<dataset>``.
        schedule: the :class:`~train.training.trainers.Schedule` of every run.
        device: ``cuda`` or ``cpu``.
        nproc_per_node: processes (GPUs) per run; above 1 each run is started with torchrun.
        plans_name: the base plans (``nnUNetPlans``).
        env: extra environment variables of the worker processes.
    """

    dataset: str
    dataset_key: str
    folder: Path
    preprocessed: Path
    schedule: Any
    device: str
    nproc_per_node: int = 1
    plans_name: str = "nnUNetPlans"
    env: Mapping[str, str] | None = None

    def results_root(self, seed: int) -> Path:
        """The ``nnUNet_results`` folder of one seed's runs."""
        return self.folder / f"seed_{seed}"

    def run_folder(self, kind: str, run: RunKey) -> Path:
        """``<folder>/<kind>/<network>/fold_<f>/seed_<s>`` (``kind``: ``logs`` or ``eval``)."""
        return self.folder / kind / run.name


def worker_command(context: RunContext, args: list[str]) -> list[str]:
    """The command of one worker: plain Python, or ``torchrun`` (``torch.distributed.run``) above one process."""
    if context.nproc_per_node > 1:
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={context.nproc_per_node}"]
        return [sys.executable, *launcher, "-m", "train.reproduce.worker", *args]
    return [sys.executable, "-m", "train.reproduce.worker", *args]


def _tail(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def train_run(context: RunContext, run: RunKey, *, resume: bool) -> dict[str, Any]:
    """Train one run in a worker process; returns the worker's record (``fold_folder``, ``wall_time_s`` ...).

    Raises:
        RuntimeError: the worker failed (the message holds the end of its log and the log's path).
    """
    log_dir = context.run_folder("logs", run)
    log_dir.mkdir(parents=True, exist_ok=True)
    result = log_dir / "worker.json"
    result.unlink(missing_ok=True)
    args = worker_arguments(
        context.dataset,
        network=run.network,
        fold=run.fold,
        seed=run.seed,
        device=context.device,
        schedule=context.schedule,
        plans_name=context.plans_name,
        result=result,
        resume=resume,
    )
    env = {**os.environ, **(context.env or {}), "nnUNet_results": str(context.results_root(run.seed))}
    repo_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH", "")) if p)
    log_path = log_dir / "train.log"
    command = worker_command(context, args)
    logger.info("training %s%s: log %s", run.name, " (resuming)" if resume else "", log_path)
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not result.is_file():
        raise RuntimeError(
            f"training {run.name} failed (exit {done.returncode}); log {log_path} ends:\n{_tail(log_path)}"
        )
    return json.loads(result.read_text(encoding="utf-8"))


def reference_subset(references: Path, predictions: Path, target: Path) -> Path:
    """A folder linking the references of the cases predicted in ``predictions`` (a fold's validation cases).

    Raises:
        ValueError: a predicted case has no reference.
    """
    from train.evaluation.evaluate import list_label_maps

    predicted = list_label_maps(predictions)
    available = list_label_maps(references)
    missing = sorted(set(predicted) - set(available))
    if missing:
        raise ValueError(f"expected a reference in {references} for every predicted case; missing: {missing}")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for case_id in predicted:
        source = available[case_id]
        try:
            (target / source.name).symlink_to(source.resolve())
        except OSError:  # file systems without symbolic links
            shutil.copy2(source, target / source.name)
    return target


def evaluate_run(context: RunContext, run: RunKey, fold_folder: Path) -> dict[str, Any]:
    """Dice and NSD of the fold's validation predictions; returns the state record of the run's metrics.

    Raises:
        ValueError: the fold has no validation predictions, or a reference is missing.
    """
    predictions = fold_folder / "validation"
    if not predictions.is_dir():
        raise ValueError(f"expected nnU-Net's validation predictions in {predictions}; the training wrote none")
    out = context.run_folder("eval", run)
    references = reference_subset(context.preprocessed / "gt_segmentations", predictions, out / "reference")
    return metrics_record(predictions, references, out, context.dataset_key)


def metrics_record(predictions: Path, references: Path, out: Path, label_set: str) -> dict[str, Any]:
    """Evaluate ``predictions`` against ``references`` (:func:`train.evaluation.evaluate_folders`), write the
    reports into ``out`` and return the state record: means, class means, case count, report and classes."""
    from train.evaluation import evaluate_folders, write_reports

    result = evaluate_folders(predictions, references, label_set=label_set)  # type: ignore[arg-type]
    written = write_reports(result, out, plot=False)
    return {
        "dice": _finite(result.mean("dice")),
        "nsd": _finite(result.mean("nsd")),
        "class_means": {
            metric: {name: _finite(value) for name, value in result.class_means(metric).items()}  # type: ignore[arg-type]
            for metric in ("dice", "nsd")
        },
        "cases": len(result.cases),
        "metrics": str(written["json"]),
        "classes": [{"name": c.name, "nsd_tolerance_mm": c.tolerance_mm} for c in result.classes],
    }


def _finite(value: float) -> float | None:
    """``NaN`` (a class absent from every case) as ``None``, for plain JSON."""
    return None if math.isnan(value) else float(value)
