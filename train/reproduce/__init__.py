"""``gasa-train reproduce``: the paper's Tables 1 and 2, run and written in its layout.

Modules: :mod:`~train.reproduce.tables` (the tables as data), :mod:`~train.reproduce.plan` (network x fold x
seed, availability), :mod:`~train.reproduce.state` (the resumable state file), :mod:`~train.reproduce.worker`
and :mod:`~train.reproduce.execute` (one run: training, evaluation), :mod:`~train.reproduce.runner` (the
orchestration), :mod:`~train.reproduce.table_writer` and :mod:`~train.reproduce.plots` (the outputs),
:mod:`~train.reproduce.cli` (the sub-command). Importing this package does not import torch or nnU-Net.
"""

from __future__ import annotations

from train.reproduce.cli import add_reproduce_parser
from train.reproduce.plan import PAPER_FOLDS, PAPER_SEEDS, RunKey, RunPlan, build_run_plan, unavailable_reason
from train.reproduce.state import ReproductionState
from train.reproduce.tables import DATASETS, METRICS, TABLES, DatasetColumn, Method, TableSpec, table_spec

__all__ = [
    "DATASETS",
    "METRICS",
    "PAPER_FOLDS",
    "PAPER_SEEDS",
    "TABLES",
    "DatasetColumn",
    "Method",
    "ReproductionState",
    "RunKey",
    "RunPlan",
    "TableSpec",
    "add_reproduce_parser",
    "build_run_plan",
    "table_spec",
    "unavailable_reason",
]
