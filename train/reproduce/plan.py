"""The run plan of a reproduction: which networks train, on which folds and seeds, for how long.

The paper's schedule (appendix): nnU-Net's 1000 epochs x 250 iterations, 5-fold cross-validation, one fixed
seed. ``--tiny`` is the CPU smoke schedule: 1 epoch x 2 iterations on ``fold all`` (tiny data sets cannot be
split five ways). Before anything runs, every row is checked against the network registry
(:data:`GASACore.network.registry.NETWORKS`) and ``gasa-train train``'s variants: rows this installation
cannot train are *skipped* with the reason written into the table (as the paper leaves MAT out on AMOS),
never silently dropped; a row the user names that the table does not have is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from GASACore.network.registry import NETWORKS
from train.reproduce.tables import Method, TableSpec

__all__ = [
    "PAPER_FOLDS",
    "PAPER_SEEDS",
    "TINY_SCHEDULE",
    "RunKey",
    "RunPlan",
    "build_run_plan",
    "schedule_for",
    "unavailable_reason",
]

#: nnU-Net's 5-fold cross-validation, as the paper.
PAPER_FOLDS: tuple[str, ...] = ("0", "1", "2", "3", "4")
#: The paper trains with "a fixed seed".
PAPER_SEEDS: tuple[int, ...] = (0,)
#: The CPU smoke run's schedule (``Schedule`` fields); the paper's is ``Schedule()``'s defaults (1000 x 250).
TINY_SCHEDULE: dict[str, int] = {"epochs": 1, "iterations_per_epoch": 2, "val_iterations_per_epoch": 1, "save_every": 1}


def schedule_for(*, tiny: bool, epochs: int | None = None, iterations: int | None = None) -> Any:
    """The :class:`~train.training.trainers.Schedule` of a reproduction: the paper's, or the tiny one with ``tiny``;
    ``epochs`` / ``iterations`` (per epoch) override either (imports nnU-Net: call after setting its folders)."""
    from train.training.trainers import Schedule

    fields: dict[str, int] = dict(TINY_SCHEDULE) if tiny else {}
    if epochs is not None:
        fields["epochs"] = epochs
    if iterations is not None:
        fields["iterations_per_epoch"] = iterations
    return Schedule(**fields)


@dataclass(frozen=True, order=True)
class RunKey:
    """One training: a table row's network on one fold with one seed."""

    network: str
    fold: str
    seed: int

    @property
    def name(self) -> str:
        """``gasa-unet/fold_0/seed_0``: the key of the run in the state file."""
        return f"{self.network}/fold_{self.fold}/seed_{self.seed}"


@dataclass(frozen=True)
class RunPlan:
    """The runs of one table on one data set, and the rows skipped (network -> why)."""

    dataset_key: str
    runs: tuple[RunKey, ...]
    skipped: dict[str, str]

    def without(self, reasons: dict[str, str]) -> RunPlan:
        """This plan with the rows of ``reasons`` (network -> why) moved from the runs to the skipped rows.

        >>> plan = RunPlan("btcv", (RunKey("nnunet", "all", 0), RunKey("nnunet-mat", "all", 0)), {})
        >>> [run.name for run in plan.without({"nnunet-mat": "not cubic"}).runs]
        ['nnunet/fold_all/seed_0']

        Raises:
            ValueError: no run would be left.
        """
        runs = tuple(run for run in self.runs if run.network not in reasons)
        skipped = {**self.skipped, **{n: r for n, r in reasons.items() if any(run.network == n for run in self.runs)}}
        if not runs:
            raise ValueError(f"nothing left to run on {self.dataset_key}: {skipped}")
        return RunPlan(self.dataset_key, runs, skipped)


def unavailable_reason(method: Method, *, trainable: Sequence[str], device: str, cuda_available: bool) -> str | None:
    """Why this installation cannot train ``method`` (``None`` when it can).

    Args:
        method: the table row.
        trainable: the variants ``gasa-train train`` accepts (``train.planning.TRAIN_VARIANTS``).
        device: the device the runs use (``cuda`` or ``cpu``).
        cuda_available: whether torch sees a CUDA device.
    """
    if method.network not in NETWORKS:
        return f"network {method.network!r} is not in this installation's registry (known: {', '.join(NETWORKS)})"
    if method.network not in trainable:
        return f"network {method.network!r} is registered but `gasa-train train` cannot train it yet"
    if NETWORKS[method.network].requires_cuda and (device != "cuda" or not cuda_available):
        return f"{method.network} needs CUDA (its Mamba kernels exist on CUDA only); this run uses {device}"
    return None


def build_run_plan(
    table: TableSpec,
    dataset_key: str,
    *,
    networks: Sequence[str] | None,
    folds: Sequence[str],
    seeds: Sequence[int],
    trainable: Sequence[str],
    device: str,
    cuda_available: bool,
) -> RunPlan:
    """Every (network, fold, seed) of the table's rows that can run here, in row order.

    Args:
        table: the table.
        dataset_key: ``btcv``, ``amos`` or ``kits23``.
        networks: a subset of the table's rows (``--methods``); ``None`` for all of them.
        folds: ``0``..``4`` or ``all``.
        seeds: the seeds.
        trainable, device, cuda_available: see :func:`unavailable_reason`.

    Raises:
        ValueError: a named network that is not a row of the table, no folds or seeds, or no row left to run.
    """
    chosen = list(table.networks if networks is None else networks)
    for network in chosen:
        table.method(network)  # raises for a row the table does not have
    if not folds or not seeds:
        raise ValueError(f"a run plan needs at least one fold and one seed, got folds {folds} and seeds {seeds}")
    runs: list[RunKey] = []
    skipped: dict[str, str] = {}
    for method in table.methods:
        if method.network not in chosen:
            continue
        reason = method.skips.get(dataset_key) or unavailable_reason(
            method, trainable=trainable, device=device, cuda_available=cuda_available
        )
        if reason is not None:
            skipped[method.network] = reason
            continue
        runs += [RunKey(method.network, str(fold), int(seed)) for seed in seeds for fold in folds]
    if not runs:
        raise ValueError(f"nothing to run for table {table.number} on {dataset_key}: {skipped}")
    return RunPlan(dataset_key, tuple(runs), skipped)
