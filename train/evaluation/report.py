"""Writers for an :class:`~train.evaluation.evaluate.EvaluationResult`: CSV, Markdown, JSON and a PNG plot.

* CSV: one row per case x class (``case, class, values, nsd_tolerance_mm, dice, nsd``), then one ``mean``
  row per class and the overall mean; NaN cells are empty.
* Markdown: the paper's layout, classes as columns plus a ``mean`` column, rows ``Dice (%)`` and
  ``NSD (%)``, with the NSD tolerances and the empty-mask conventions stated under the table.
* PNG: per class mean Dice and NSD as bars with the per case values as dots (matplotlib, Agg backend).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from train.evaluation.evaluate import NSD_DEFINITION, EvaluationResult, conventions_for

__all__ = ["markdown_table", "write_csv", "write_json", "write_markdown", "write_plot", "write_reports"]


def _cell(value: float, scale: float = 1.0, digits: int = 6) -> str:
    return "" if math.isnan(value) else f"{value * scale:.{digits}f}"


def write_csv(result: EvaluationResult, path: str | Path) -> Path:
    """Write the per case x class table (plus mean rows) to ``path`` and return it."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "class", "values", "nsd_tolerance_mm", "dice", "nsd"])
        for case in result.cases:
            for i, cls in enumerate(result.classes):
                values = " ".join(str(v) for v in cls.values)
                writer.writerow(
                    [case.case_id, cls.name, values, cls.tolerance_mm, _cell(case.dice[i]), _cell(case.nsd[i])]
                )
        dice_means, nsd_means = result.class_means("dice"), result.class_means("nsd")
        for cls in result.classes:
            values = " ".join(str(v) for v in cls.values)
            row = ["mean", cls.name, values, cls.tolerance_mm, _cell(dice_means[cls.name]), _cell(nsd_means[cls.name])]
            writer.writerow(row)
        writer.writerow(["mean", "mean", "", "", _cell(result.mean("dice")), _cell(result.mean("nsd"))])
    return path


def _mm(value: float) -> str:
    """A tolerance for the table notes, to 0.1 micrometre: ``1.0330772532390826`` -> ``1.0331``, ``1.0`` -> ``1``."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _tolerance_note(result: EvaluationResult) -> str:
    tolerances = {cls.tolerance_mm for cls in result.classes}
    if len(tolerances) == 1:
        return f"NSD tolerance: {_mm(tolerances.pop())} mm for every class."
    parts = ", ".join(f"{cls.name} {_mm(cls.tolerance_mm)} mm" for cls in result.classes)
    return f"NSD tolerances: {parts}."


def markdown_table(result: EvaluationResult) -> str:
    """The paper's table: classes as columns plus ``mean``; rows Dice (%) and NSD (%); notes below."""
    names = [cls.name for cls in result.classes]
    lines = [
        "| metric | " + " | ".join(names) + " | mean |",
        "| --- | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for metric, title in (("dice", "Dice (%)"), ("nsd", "NSD (%)")):
        means = result.class_means(metric)  # type: ignore[arg-type]
        cells = [_cell(means[name], 100.0, 2) or "n/a" for name in names]
        overall = _cell(result.mean(metric), 100.0, 2) or "n/a"  # type: ignore[arg-type]
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {overall} |")
    notes = f"{_tolerance_note(result)} {NSD_DEFINITION} {conventions_for(result.classes)}"
    lines += ["", f"{len(result.cases)} cases. {notes}"]
    return "\n".join(lines) + "\n"


def write_markdown(result: EvaluationResult, path: str | Path) -> Path:
    """Write :func:`markdown_table` to ``path`` and return it."""
    path = Path(path)
    path.write_text(markdown_table(result), encoding="utf-8")
    return path


def write_json(result: EvaluationResult, path: str | Path) -> Path:
    """Write :meth:`EvaluationResult.to_json` to ``path`` and return it."""
    path = Path(path)
    path.write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    return path


def write_plot(result: EvaluationResult, path: str | Path) -> Path:
    """Bar plot of the class means of Dice and NSD with per case dots; written as PNG to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    names = [cls.name for cls in result.classes]
    figure = Figure(figsize=(max(6.0, 0.7 * len(names) + 2.0), 4.5), layout="constrained")
    FigureCanvasAgg(figure)  # Agg canvas of its own: no pyplot, no global backend switch
    axes = figure.add_subplot()
    width = 0.38
    for offset, (metric, label, colour) in enumerate((("dice", "Dice", "tab:blue"), ("nsd", "NSD", "tab:orange"))):
        means = result.class_means(metric)  # type: ignore[arg-type]
        per_class = result.per_class(metric)  # type: ignore[arg-type]
        xs = [i + (offset - 0.5) * width for i in range(len(names))]
        axes.bar(xs, [0.0 if math.isnan(means[n]) else means[n] for n in names], width, label=label, color=colour)
        for x, name in zip(xs, names, strict=True):
            values = [v for v in per_class[name] if not math.isnan(v)]
            axes.scatter([x] * len(values), values, s=8, color="black", zorder=3)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_ylim(0.0, 1.05)
    axes.set_ylabel("score")
    dice_text, nsd_text = (_cell(result.mean(m), 100.0, 2) or "n/a" for m in ("dice", "nsd"))
    axes.set_title(f"mean Dice {dice_text} %, mean NSD {nsd_text} % ({len(result.cases)} cases)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.savefig(path, dpi=120)
    return path


def write_reports(result: EvaluationResult, out_dir: str | Path, *, plot: bool = True) -> dict[str, Path]:
    """Write ``metrics.csv``, ``metrics.md``, ``metrics.json`` (and ``metrics.png``) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {
        "csv": write_csv(result, out / "metrics.csv"),
        "markdown": write_markdown(result, out / "metrics.md"),
        "json": write_json(result, out / "metrics.json"),
    }
    if plot:
        written["png"] = write_plot(result, out / "metrics.png")
    return written
