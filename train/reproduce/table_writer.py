"""The reproduced table in the paper's layout: Markdown, CSV and JSON, plus per-organ plots.

Rows are the table's methods in the paper's order, columns a Dice and an NSD column per data set (those
reproduced in ``--out``, in the paper's order). A value is the mean over the row's finished runs (folds x
seeds) of each run's mean over classes, in percent with two decimals; a row with a baseline carries its
difference to the baseline's value in brackets, ``81.69 (+0.17)``. Differences are taken between the
*shown* (rounded) values, so a reader can check them as in the paper. Rounding is half-up on the decimal
value (``0.81685`` -> ``81.69``), never on its binary approximation. Skipped rows (the paper's MAT on AMOS,
a network this installation lacks) show ``-`` with the reason in the notes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from GASACore.io.atomic import atomic_output
from train.reproduce.state import STATE_NAME, ReproductionState
from train.reproduce.tables import DATASETS, METRICS, TableSpec

__all__ = [
    "DASH",
    "CellValues",
    "aggregate",
    "format_difference",
    "format_percent",
    "markdown_table",
    "read_states",
    "table_json",
    "write_tables",
]

logger = logging.getLogger(__name__)

#: What a cell without a value shows.
DASH = "-"
_CENT = Decimal("0.01")


def _rounded_percent(fraction: float) -> Decimal:
    return (Decimal(repr(float(fraction))) * 100).quantize(_CENT, rounding=ROUND_HALF_UP)


def format_percent(fraction: float | None) -> str:
    """A score (0-1) as the paper shows it: percent, two decimals (``0.8169`` -> ``81.69``); ``-`` for none."""
    if fraction is None or math.isnan(fraction):
        return DASH
    return f"{_rounded_percent(fraction)}"


def format_difference(fraction: float | None, baseline: float | None) -> str:
    """``(+0.17)``: the shown value minus the shown baseline, in percentage points; ``""`` when one is missing."""
    if fraction is None or baseline is None or math.isnan(fraction) or math.isnan(baseline):
        return ""
    difference = _rounded_percent(fraction) - _rounded_percent(baseline)
    sign = "-" if difference < 0 else "+"
    return f"({sign}{abs(difference)})"


@dataclass(frozen=True)
class CellValues:
    """One method on one data set: means over its finished runs, or why it has none.

    Attributes:
        means: metric -> mean over runs of the runs' class-mean score (0-1); ``None`` when no run has one.
        class_means: metric -> class name -> mean over runs of the class's score.
        runs: finished runs; ``recorded``: runs recorded in the state (finished or not).
        skipped: why the row was not run on this data set (``None`` if it was).
    """

    means: Mapping[str, float | None] = field(default_factory=dict)
    class_means: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    runs: int = 0
    recorded: int = 0
    skipped: str | None = None


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [float(v) for v in values if v is not None and not math.isnan(v)]
    return sum(finite) / len(finite) if finite else None


def _is_test_set(state: ReproductionState) -> bool:
    return state.config.get("protocol") == "test-set"


def aggregate(state: ReproductionState) -> dict[str, CellValues]:
    """Per network of a state: its means over finished runs (skipped rows carry their reason).

    With the test-set protocol a run is a seed: the test-set score of its fold ensemble (``state.tests``);
    otherwise a run is a fold and seed: its cross-validation score (the fold's validation cases).
    """
    runs = list(state.runs.values())
    if _is_test_set(state):
        records = list(state.tests.values())
        recorded = Counter(network for network, _ in {(r["network"], r["seed"]) for r in runs})
    else:
        records = [r for r in runs if r.get("status") == "done"]
        recorded = Counter(r["network"] for r in runs)
    by_network: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_network.setdefault(record["network"], []).append(record)
    cells: dict[str, CellValues] = {network: CellValues(skipped=reason) for network, reason in state.skipped.items()}
    names = [c["name"] for c in state.classes]
    for network in {**recorded, **by_network}:
        done = by_network.get(network, [])
        means = {metric: _mean([r.get(metric) for r in done]) for metric, _ in METRICS}
        class_means = (
            {
                metric: {name: _mean([r["class_means"][metric].get(name) for r in done]) for name in names}
                for metric, _ in METRICS
            }
            if done
            else {}
        )
        count = max(recorded.get(network, 0), len(done))
        cells[network] = CellValues(means, class_means, len(done), count, state.skipped.get(network))
    return cells


def read_states(out: Path, table: TableSpec) -> dict[str, ReproductionState]:
    """The states of ``table`` under ``out``, by data set key in the paper's order."""
    states = {}
    for key in DATASETS:
        path = Path(out) / key / STATE_NAME
        if path.is_file():
            state = ReproductionState.read(path)
            if state.config.get("table") == table.number:
                states[key] = state
    return states


def _rows(table: TableSpec, cells: Mapping[str, Mapping[str, CellValues]]) -> list[str]:
    """The table's networks that have a value or a skip note on some data set."""
    return [m.network for m in table.methods if any(m.network in by_net for by_net in cells.values())]


def _cell_text(table: TableSpec, network: str, metric: str, cells: Mapping[str, CellValues]) -> str:
    cell = cells.get(network)
    if cell is None or cell.means.get(metric) is None:
        return DASH
    value = cell.means[metric]
    text = format_percent(value)
    baseline = table.method(network).baseline
    base_cell = cells.get(baseline) if baseline else None
    difference = format_difference(value, base_cell.means.get(metric)) if base_cell else ""
    partial = "*" if cell.runs < cell.recorded else ""
    return f"{text}{partial} {difference}".rstrip()


def markdown_table(
    table: TableSpec, cells: Mapping[str, Mapping[str, CellValues]], protocols: Mapping[str, str] | None = None
) -> str:
    """The reproduced table (rows: methods; per data set Dice and NSD columns), the paper's below it, and notes.

    Args:
        table: the table.
        cells: data set key -> network -> values (:func:`aggregate`).
        protocols: data set key -> ``cross-validation`` (the default) or ``test-set``, for the notes.
    """
    keys = list(cells)
    networks = _rows(table, cells)
    head = "| Models | " + " | ".join(f"{DATASETS[k].title} {title}" for k in keys for _, title in METRICS) + " |"
    rule = "| --- | " + " | ".join("---:" for _ in keys for _ in METRICS) + " |"
    lines = [f"Table {table.number} (reproduced): {table.caption}", "", head, rule]
    for network in networks:
        method = table.method(network)
        values = [_cell_text(table, network, m, cells[k]) for k in keys for m, _ in METRICS]
        lines.append(f"| {method.title} ({network}) | " + " | ".join(values) + " |")
    lines += ["", f"The paper's Table {table.number}:", "", head, rule]
    for network in networks:
        method = table.method(network)
        paper = [method.paper.get(k) for k in keys]
        values = [DASH if p is None else f"{p[i]:.2f}" for p in paper for i in range(len(METRICS))]
        lines.append(f"| {method.title} ({network}) | " + " | ".join(values) + " |")
    lines += ["", *_notes(table, cells, protocols or {})]
    return "\n".join(lines) + "\n"


_PROTOCOLS = {
    "cross-validation": "cross-validation, a run is a fold and seed scored on the fold's validation cases",
    "test-set": "held-out test set, a run is a seed whose fold ensemble (mirroring TTA) predicts it",
}


def _notes(table: TableSpec, cells: Mapping[str, Mapping[str, CellValues]], protocols: Mapping[str, str]) -> list[str]:
    notes = [
        "Values: percent, mean over the finished runs of each run's mean over classes: Dice and NSD (Nikolov et "
        "al.'s surface Dice, train.evaluation). Brackets: difference to the row's baseline, between the shown values."
    ]
    for key, by_net in cells.items():
        state_notes = []
        for network in _rows(table, {key: by_net}):
            cell = by_net[network]
            if cell.skipped:
                state_notes.append(f"{network}: skipped, {cell.skipped}")
            elif cell.runs < cell.recorded:
                state_notes.append(f"{network}*: {cell.runs} of {cell.recorded} recorded runs finished")
            else:
                state_notes.append(f"{network}: {cell.runs} run(s)")
        protocol = _PROTOCOLS[protocols.get(key, "cross-validation")]
        notes.append(f"{DATASETS[key].title} ({protocol}): " + "; ".join(state_notes) + ".")
    not_run = [n for n in table.networks if not any(n in by_net for by_net in cells.values())]
    if not_run:
        notes.append(f"Not run: {', '.join(not_run)}.")
    return notes


def table_json(table: TableSpec, cells: Mapping[str, Mapping[str, CellValues]]) -> dict[str, Any]:
    """Plain JSON of the table: per data set and network the means, shown values, differences and class means."""
    datasets: dict[str, Any] = {}
    for key, by_net in cells.items():
        rows: dict[str, Any] = {}
        for network in _rows(table, {key: by_net}):
            cell, method = by_net[network], table.method(network)
            base = by_net.get(method.baseline) if method.baseline else None
            entry: dict[str, Any] = {"title": method.title, "baseline": method.baseline, "runs": cell.runs}
            entry["recorded_runs"], entry["skipped"] = cell.recorded, cell.skipped
            for metric, _ in METRICS:
                value = cell.means.get(metric)
                entry[metric] = value
                entry[f"{metric}_percent"] = format_percent(value)
                entry[f"{metric}_difference"] = format_difference(value, base.means.get(metric) if base else None)
            paper = method.paper.get(key)
            entry["paper"] = dict(zip([m for m, _ in METRICS], paper, strict=True)) if paper else None
            entry["class_means"] = {m: dict(v) for m, v in cell.class_means.items()}
            rows[network] = entry
        datasets[key] = {"title": DATASETS[key].title, "rows": rows}
    return {"table": table.number, "caption": table.caption, "datasets": datasets}


def _csv_text(table: TableSpec, cells: Mapping[str, Mapping[str, CellValues]]) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["table", "dataset", "method", "network", "baseline", "runs", "metric", "percent", "difference",
                     "value", "paper_percent", "note"])  # fmt: skip
    data = table_json(table, cells)
    for key, dataset in data["datasets"].items():
        for network, row in dataset["rows"].items():
            for metric, _ in METRICS:
                value = row[metric]
                paper = row["paper"][metric] if row["paper"] else ""
                writer.writerow([table.number, key, row["title"], network, row["baseline"] or "", row["runs"], metric,
                                 row[f"{metric}_percent"], row[f"{metric}_difference"],
                                 "" if value is None else f"{value:.6f}", paper, row["skipped"] or ""])  # fmt: skip
    return stream.getvalue()


def _write_text(path: Path, text: str) -> Path:
    with atomic_output(path, overwrite=True) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def write_tables(table: TableSpec, out: Path) -> dict[str, Path]:
    """Write ``table<N>.md``, ``.csv``, ``.json`` into ``out`` and per-organ plots into its data set folders.

    Returns:
        The files written by kind (``markdown``, ``csv``, ``json``, ``plot_<dataset>``).

    Raises:
        ValueError: ``out`` holds no reproduction of this table.
    """
    from train.reproduce.plots import write_per_organ_plot

    states = read_states(out, table)
    cells = {key: aggregate(state) for key, state in states.items()}
    protocols = {key: str(state.config.get("protocol", "cross-validation")) for key, state in states.items()}
    if not cells:
        raise ValueError(
            f"expected a reproduction of table {table.number} in {out} (<dataset>/{STATE_NAME}), found none"
        )
    stem = Path(out) / f"table{table.number}"
    written = {
        "markdown": _write_text(stem.with_suffix(".md"), markdown_table(table, cells, protocols)),
        "csv": _write_text(stem.with_suffix(".csv"), _csv_text(table, cells)),
        "json": _write_text(stem.with_suffix(".json"), json.dumps(table_json(table, cells), indent=2) + "\n"),
    }
    for key, by_net in cells.items():
        plot = write_per_organ_plot(table, key, by_net, Path(out) / key / f"table{table.number}_per_organ.png")
        if plot is not None:
            written[f"plot_{key}"] = plot
    logger.info("wrote %s", ", ".join(str(p) for p in written.values()))
    return written
