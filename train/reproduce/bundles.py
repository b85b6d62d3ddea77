"""Model bundles of a reproduction (``--export``): one per row and seed once all its folds have finished.

Each bundle is written by ``gasa-train export``'s :func:`train.export.export_results_folder` from the seed's
results folder, with the folds of the run plan and the table column's label set, to
``<out>/<dataset>/bundles/<network>-seed<S>``; ``gasa-segment -m`` and the Slicer module run it. An existing
bundle is kept (a later call with more folds exports to a new folder only after the old one is moved away).
"""

from __future__ import annotations

import logging
from pathlib import Path

from train.reproduce.plan import RunPlan
from train.reproduce.state import ReproductionState

__all__ = ["export_bundles"]

logger = logging.getLogger(__name__)


def export_bundles(state: ReproductionState, plan: RunPlan, folder: Path, *, table_number: int) -> dict[str, Path]:
    """Export the bundle of every (network, seed) of ``plan`` whose runs are all done; returns the new ones.

    The bundles are recorded in ``state.bundles`` (``network/seed_S`` -> folder) and the state is saved.
    """
    from train.export import export_results_folder

    groups: dict[tuple[str, int], list[str]] = {}
    folds: dict[tuple[str, int], list[str]] = {}
    for run in plan.runs:
        groups.setdefault((run.network, run.seed), []).append(run.name)
        folds.setdefault((run.network, run.seed), []).append(f"fold_{run.fold}")
    written: dict[str, Path] = {}
    for (network, seed), names in groups.items():
        key = f"{network}/seed_{seed}"
        target = folder / "bundles" / f"{network}-seed{seed}"
        if target.exists() or not all(state.is_done(name) for name in names):
            continue
        metadata = {
            "name": f"{network}-{plan.dataset_key}-seed{seed}",
            "description": f"{network} of the paper's Table {table_number} reproduced on {state.config['dataset']} "
            f"(seed {seed}, {', '.join(folds[network, seed])})",
        }
        results = state.runs[names[0]]["results_folder"]
        export_results_folder(
            results, target, label_set=plan.dataset_key, metadata=metadata, folds=folds[network, seed]
        )
        state.bundles[key] = str(target)
        written[key] = target
        logger.info("exported %s to %s", key, target)
    if written:
        state.save()
    return written
