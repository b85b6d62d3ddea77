"""Per-organ plot of a reproduced table on one data set: class-mean Dice and NSD per method, as grouped bars.

Drawn with matplotlib's Agg canvas (no pyplot, no global backend), as :func:`train.evaluation.write_plot`. When
matplotlib is not installed the plot is skipped with a logged line; the tables do not depend on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from GASACore.io.atomic import atomic_output
from train.reproduce.tables import DATASETS, METRICS, TableSpec

__all__ = ["write_per_organ_plot"]

logger = logging.getLogger(__name__)


def write_per_organ_plot(table: TableSpec, dataset_key: str, cells: Mapping[str, Any], path: Path) -> Path | None:
    """Write the plot of the methods of ``cells`` (network -> ``CellValues``) that have class means.

    Returns:
        ``path``, or ``None`` when nothing was drawn (no method or class with results, or no matplotlib).
    """
    networks = [m.network for m in table.methods if m.network in cells and cells[m.network].class_means]
    if not networks:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        logger.warning("per-organ plot %s skipped: matplotlib is not installed (%s)", path, err)
        return None
    organs = [  # classes no run saw (absent from every case) are left out
        organ
        for organ in cells[networks[0]].class_means["dice"]
        if any(cells[n].class_means[m].get(organ) is not None for n in networks for m, _ in METRICS)
    ]
    if not organs:
        return None
    figure = Figure(figsize=(max(7.0, 0.55 * len(organs) * max(1, len(networks)) / 2 + 3.0), 7.5), layout="constrained")
    FigureCanvasAgg(figure)
    width = 0.8 / len(networks)
    for row, (metric, title) in enumerate(METRICS):
        axes = figure.add_subplot(len(METRICS), 1, row + 1)
        for index, network in enumerate(networks):
            values = cells[network].class_means[metric]
            heights = [100.0 * (values.get(o) or 0.0) for o in organs]
            xs = [i + (index - (len(networks) - 1) / 2) * width for i in range(len(organs))]
            axes.bar(xs, heights, width, label=f"{table.method(network).title} ({network})")
        axes.set_xticks(range(len(organs)), organs, rotation=45, ha="right")
        axes.set_ylim(0.0, 100.0)
        axes.set_ylabel(f"{title} (%)")
        axes.set_title(f"Table {table.number}, {DATASETS[dataset_key].title}: {title} per class")
        if row == 0:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    with atomic_output(path, overwrite=True) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    return path
