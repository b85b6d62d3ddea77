"""Batch and cohort runs: the cases of an input folder sharded over torchrun's ranks, resumable, with one summary.

``torchrun --nproc_per_node=N -m GASACore.cli INPUT_DIR -o OUT_DIR -m MODEL --resume`` and the plain
``gasa-segment INPUT_DIR -o OUT_DIR -m MODEL`` (world size 1) run the same code: :func:`run_cases`.
"""

from __future__ import annotations

from GASACore.cohort.ranks import GATHER_TIMEOUT, RankGroup, RankInfo, rank_request, select_rank_device, shard
from GASACore.cohort.run import RunRequest, existing_outputs_error, run_cases
from GASACore.cohort.summary import (
    SUMMARY_CSV,
    SUMMARY_JSON,
    SUMMARY_SCHEMA_VERSION,
    CaseRecord,
    CaseStatus,
    output_complete,
    summary_counts,
    write_summary,
)

__all__ = [
    "GATHER_TIMEOUT",
    "SUMMARY_CSV",
    "SUMMARY_JSON",
    "SUMMARY_SCHEMA_VERSION",
    "CaseRecord",
    "CaseStatus",
    "RankGroup",
    "RankInfo",
    "RunRequest",
    "existing_outputs_error",
    "output_complete",
    "rank_request",
    "run_cases",
    "select_rank_device",
    "shard",
    "summary_counts",
    "write_summary",
]
