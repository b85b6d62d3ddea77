"""``gasa-train reproduce``: plan, train and evaluate every run of a paper table on one data set, then write it.

Order of work (each step is an existing ``gasa-train`` stage, called through its Python API):

1. the plans: nnU-Net's planning and pre-processing plus the rows' derived plans
   (:func:`train.planning.run_planning`) when the base plans are missing; only the derived plans
   (:func:`train.planning.write_gasa_plans`) when just those are;
2. every run of the plan (network x fold x seed, :mod:`train.reproduce.plan`) not yet ``done`` in the
   state file: training in a worker process (:func:`train.reproduce.execute.train_run`), then Dice / NSD of
   the fold's validation predictions (:func:`train.reproduce.execute.evaluate_run`), recorded at once;
3. with a held-out test set (the paper's protocol): a bundle per row and seed (:mod:`train.reproduce.bundles`)
   that predicts it as the ensemble of its folds (:mod:`train.reproduce.testset`); the table then holds the
   test-set scores, else the cross-validation ones;
4. the table over every data set of ``--out`` and the per-organ plots (:mod:`train.reproduce.table_writer`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from train.reproduce.execute import RunContext, evaluate_run, train_run
from train.reproduce.plan import PAPER_FOLDS, PAPER_SEEDS, RunPlan, build_run_plan, schedule_for
from train.reproduce.state import STATE_NAME, ReproductionState
from train.reproduce.tables import DATASETS, TableSpec, table_spec

__all__ = ["TINY_PLANNER", "PlansOutcome", "ReproduceRequest", "ReproductionResult", "ensure_plans", "reproduce"]

logger = logging.getLogger(__name__)

#: Planner and block sizes of the tiny smoke run when it has to plan (``PlannerSettings`` / GASA fields).
TINY_PLANNER: dict[str, Any] = {"gpu_memory_gb": 0.1, "base_features": 4, "max_features": 32}
TINY_GASA: dict[str, Any] = {"dim": 8, "heads": 2}


@dataclass(frozen=True)
class ReproduceRequest:
    """One ``gasa-train reproduce`` call.

    Attributes:
        table: 1 or 2.
        dataset_key: the table column: ``btcv``, ``amos`` or ``kits23``.
        out: the reproduction folder (one sub-folder per data set; the table files at its top).
        dataset: the converted nnU-Net data set (id or ``DatasetXXX_Name``); default: the column's
            ``gasa-train convert`` id (BTCV 17, AMOS 218, KiTS23 220).
        networks: a subset of the table's rows (``--methods``); ``None``: all.
        folds: ``None``: the paper's 5 folds (``all`` with ``tiny``).
        seeds: ``None``: the paper's one fixed seed (0).
        device: ``cuda`` or ``cpu``.
        nproc_per_node: GPUs per run (torchrun above 1).
        tiny: the CPU smoke schedule and, when it has to plan, tiny networks.
        epochs, iterations: override the schedule's epochs / iterations per epoch.
        resume: skip the runs the state file records as done; resume started ones.
        export: export a model bundle per row and seed once its folds are done (:mod:`train.reproduce.bundles`).
        test_images, test_labels: a held-out test set (images ``case_0000.nii.gz``, labels ``case.nii.gz``);
            default: ``imagesTs`` and ``labelsTs`` of the raw data set when both exist, else none.
        plans_name: the base plans.
        num_processes: planning / pre-processing processes.
    """

    table: int
    dataset_key: str
    out: Path
    dataset: str | None = None
    networks: Sequence[str] | None = None
    folds: Sequence[str] | None = None
    seeds: Sequence[int] | None = None
    device: str = "cuda"
    nproc_per_node: int = 1
    tiny: bool = False
    epochs: int | None = None
    iterations: int | None = None
    resume: bool = False
    export: bool = False
    test_images: Path | None = None
    test_labels: Path | None = None
    plans_name: str = "nnUNetPlans"
    num_processes: int = 2

    def __post_init__(self) -> None:
        if self.dataset_key not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {self.dataset_key!r}")
        if self.device not in ("cuda", "cpu"):
            raise ValueError(f"device must be 'cuda' or 'cpu', got {self.device!r}")
        if self.nproc_per_node < 1:
            raise ValueError(f"nproc_per_node must be >= 1, got {self.nproc_per_node}")
        if (self.test_images is None) != (self.test_labels is None):
            raise ValueError(
                f"test images and test labels go together, got images {self.test_images} and labels {self.test_labels}"
            )


@dataclass
class ReproductionResult:
    """What a call did and wrote."""

    state: ReproductionState
    trained: list[str] = field(default_factory=list)
    skipped_done: list[str] = field(default_factory=list)
    written: dict[str, Path] = field(default_factory=dict)
    bundles: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class PlansOutcome:
    """What :func:`ensure_plans` did: the plans files written, and the networks whose plans cannot be made here
    (network -> the reason, e.g. MAT on a plan whose bottleneck is not cubic)."""

    written: dict[str, Path]
    refused: dict[str, str]


def ensure_plans(dataset: str, preprocessed: Path, networks: Sequence[str], request: ReproduceRequest) -> PlansOutcome:
    """Make sure the base plans and the derived plans of ``networks`` exist.

    Each derived plan is written on its own: a network that cannot take the data set's plan (MAT needs a cubic
    bottleneck) is *refused* with the reason, and the others are still written, so its table row is skipped
    with that reason (as the paper leaves MAT out on AMOS) instead of stopping the whole table.

    Raises:
        ValueError: planning needs ``nnUNet_raw`` and it is not set.
    """
    import os

    from GASACore.network import GASABlockOptions
    from train.planning import PLAN_VARIANTS, PlannerSettings, plans_name_for, run_planning, write_gasa_plans

    derived = [n for n in networks if n in PLAN_VARIANTS]
    options = GASABlockOptions(**TINY_GASA) if request.tiny else None
    base = preprocessed / f"{request.plans_name}.json"
    written: dict[str, Path] = {}
    if not base.is_file():
        if not os.environ.get("nnUNet_raw"):  # noqa: SIM112 - nnU-Net reads it
            raise ValueError(f"{base} is missing and planning needs the raw data: pass --nnunet-raw or set nnUNet_raw")
        settings = PlannerSettings(plans_name=request.plans_name, **(TINY_PLANNER if request.tiny else {}))
        logger.info("planning %s (nnU-Net fingerprint, plans, pre-processing)", dataset)
        planned = run_planning(dataset, settings=settings, variants=(), num_processes=request.num_processes)
        written["base"] = planned.base_plans
    refused: dict[str, str] = {}
    for network in derived:
        if (preprocessed / f"{plans_name_for(request.plans_name, network)}.json").is_file():
            continue
        logger.info("writing the plans of %s next to %s", network, base.name)
        try:
            files, _ = write_gasa_plans(
                preprocessed, base_plans_name=request.plans_name, variants=[network], options=options
            )
        except ValueError as error:
            refused[network] = f"its plans cannot be made from {base.name}: {error}"
            continue
        written.update(files)
    return PlansOutcome(written, refused)


def _test_set(request: ReproduceRequest, raw: Path, dataset: str) -> tuple[Path, Path] | None:
    """The test set's image and label folders (resolved), or ``None`` for the cross-validation protocol."""
    if request.test_images is not None and request.test_labels is not None:
        images, labels = Path(request.test_images).resolve(), Path(request.test_labels).resolve()
        for folder in (images, labels):
            if not folder.is_dir():
                raise ValueError(f"test set folder {folder} must be a directory of images / label maps")
        return images, labels
    if raw != Path() and (raw / dataset / "imagesTs").is_dir() and (raw / dataset / "labelsTs").is_dir():
        return (raw / dataset / "imagesTs").resolve(), (raw / dataset / "labelsTs").resolve()
    return None


def _run_plan(request: ReproduceRequest, table: TableSpec) -> RunPlan:
    import torch

    from train.planning import TRAIN_VARIANTS
    from train.training import parse_fold

    folds = request.folds or (("all",) if request.tiny else PAPER_FOLDS)
    for fold in folds:
        parse_fold(fold)  # raises for anything but 0, 1, ... or all
    return build_run_plan(
        table,
        request.dataset_key,
        networks=request.networks,
        folds=[str(f) for f in folds],
        seeds=list(request.seeds or PAPER_SEEDS),
        trainable=TRAIN_VARIANTS,
        device=request.device,
        cuda_available=torch.cuda.is_available(),
    )


def reproduce(request: ReproduceRequest) -> ReproductionResult:
    """Run (or resume) one table on one data set and write the table; see the module docstring.

    The nnU-Net folders must be configured (``configure_nnunet_paths``); ``nnUNet_results`` is not used:
    each seed's models go to ``<out>/<dataset_key>/seed_<s>``.

    Raises:
        ValueError: bad request, an unknown data set, a state file for another configuration (or one with runs
            and no ``resume``), missing plans that cannot be made.
        RuntimeError: a training failed (its state stays ``started``; ``resume`` continues it).
    """
    from train.planning import configure_nnunet_paths, dataset_folder_name
    from train.reproduce.table_writer import write_tables

    table = table_spec(request.table)
    paths = configure_nnunet_paths(require=("nnUNet_preprocessed",))
    column = DATASETS[request.dataset_key]
    dataset = dataset_folder_name(request.dataset if request.dataset is not None else column.default_dataset)
    schedule = schedule_for(tiny=request.tiny, epochs=request.epochs, iterations=request.iterations)
    plan = _run_plan(request, table)
    for network, reason in plan.skipped.items():
        logger.warning("table %d, %s: skipping %s: %s", table.number, request.dataset_key, network, reason)
    folder = Path(request.out) / request.dataset_key
    test_set = _test_set(request, paths.raw, dataset)
    config = {
        "table": table.number,
        "dataset_key": request.dataset_key,
        "dataset": dataset,
        "schedule": {k: int(v) for k, v in asdict(schedule).items()},
        "plans_name": request.plans_name,
        "protocol": "test-set" if test_set else "cross-validation",
        "test_set": [str(p) for p in test_set] if test_set else None,
    }
    state = ReproductionState.open(folder / STATE_NAME, config, resume=request.resume)
    state.skipped = dict(plan.skipped)
    state.save()
    preprocessed = paths.preprocessed / dataset
    plans = ensure_plans(dataset, preprocessed, sorted({run.network for run in plan.runs}), request)
    if plans.refused:
        for network, reason in plans.refused.items():
            logger.warning("table %d, %s: skipping %s: %s", table.number, request.dataset_key, network, reason)
        plan = plan.without(plans.refused)
        state.skipped = dict(plan.skipped)
        state.save()
    context = RunContext(
        dataset=dataset,
        dataset_key=request.dataset_key,
        folder=folder,
        preprocessed=preprocessed,
        schedule=schedule,
        device=request.device,
        nproc_per_node=request.nproc_per_node,
        plans_name=request.plans_name,
        env={"nnUNet_n_proc_DA": "0"} if request.tiny else None,
    )
    result = ReproductionResult(state)
    _run_all(table, plan, context, result)
    if request.export or test_set:
        from train.reproduce.bundles import export_bundles

        result.bundles = export_bundles(state, plan, folder, table_number=table.number)
    if test_set:
        from train.reproduce.testset import evaluate_test_set

        images, labels = test_set
        evaluate_test_set(state, folder, images, labels, device=request.device, label_set=request.dataset_key)
    result.written = write_tables(table, Path(request.out))
    return result


def _run_all(table: TableSpec, plan: RunPlan, context: RunContext, result: ReproductionResult) -> None:
    """Train and evaluate every run of ``plan`` not done yet, recording each in the state as it starts and ends."""
    state = result.state
    for run in plan.runs:
        if state.is_done(run.name):
            result.skipped_done.append(run.name)
            logger.info("%s: done before, skipped", run.name)
            continue
        resume = state.was_started(run.name)
        state.mark_started(run.name, {"network": run.network, "fold": run.fold, "seed": run.seed})
        trained = train_run(context, run, resume=resume)
        metrics = evaluate_run(context, run, Path(trained["fold_folder"]))
        state.classes = metrics.pop("classes")
        state.mark_done(run.name, {**trained, **metrics})
        result.trained.append(run.name)
        logger.info("%s: Dice %s, NSD %s", run.name, _percent(metrics["dice"]), _percent(metrics["nsd"]))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.2f} %"
