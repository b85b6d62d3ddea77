"""The ``evaluate`` sub-command of ``gasa-train``: Dice and NSD of a prediction folder against references."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from train.evaluation.classes import KITS23_TOLERANCES_MM
from train.evaluation.evaluate import evaluate_folders
from train.evaluation.report import markdown_table, write_reports

__all__ = ["add_evaluate_parser", "run_evaluate"]

_DESCRIPTION = f"""\
Compare predicted label maps (PRED) with reference label maps (GT), matched by file name, and report per
case and per class Dice and Normalized Surface Dice (NSD), and their means. NSD is the paper's: Nikolov
et al.'s surface Dice, boundary elements weighted by area (DeepMind's algorithm, as the official KiTS23 code).

Classes: --labels btcv (13 organs) or amos (15 organs) evaluate one class per label at an NSD tolerance of
1 mm (the paper does not state one); --labels kits23 evaluates KiTS23's hierarchical classes kidney and
masses {{1,2,3}}, masses {{2,3}} and tumor {{2}} at the official tolerances
{", ".join(f"{v:.4f} mm" for v in KITS23_TOLERANCES_MM.values())}; --labels FILE.json reads a dataset.json
(its "labels") or a plain {{"name": value}} mapping; without --labels every value found in GT is a class.
--tolerance overrides every class's tolerance.

Conventions: a class absent from both prediction and reference is NaN for that case and left out of the
means (KiTS23 classes: 1, included, the challenge's rule); present in only one of them gives Dice 0 and NSD 0.
The mean is the mean of the class means.

Output: the Markdown table is printed; with --out DIR, metrics.csv (case x class), metrics.md,
metrics.json and metrics.png are written there.
"""


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to ``subparsers`` and return its parser.

    The parser's default ``func`` is :func:`run_evaluate`, which returns the exit code.
    """
    parser = subparsers.add_parser(
        "evaluate",
        help="Dice and NSD of predicted label maps against references",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("pred", type=Path, metavar="PRED", help="folder of predicted label maps (.nii.gz, .nrrd, ...)")
    parser.add_argument("gt", type=Path, metavar="GT", help="folder of reference label maps with the same file names")
    parser.add_argument(
        "--labels",
        default=None,
        metavar="btcv|amos|kits23|FILE.json",
        help="label set name, or a JSON file with a 'labels' mapping (default: values found in GT)",
    )
    parser.add_argument(
        "--tolerance", type=float, default=None, metavar="MM", help="NSD tolerance in mm for all classes"
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="write metrics.csv/.md/.json/.png here")
    parser.add_argument("--no-plot", action="store_true", help="with --out, skip metrics.png")
    parser.set_defaults(func=run_evaluate)
    return parser


def _labels_argument(value: str | None) -> tuple[str | None, dict | None]:
    if value is None:
        return None, None
    if value.lower() in ("btcv", "amos", "kits23"):
        return value.lower(), None
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"--labels must be btcv, amos, kits23 or a JSON file, got {value!r}")
    data = json.loads(path.read_text(encoding="utf-8"))
    mapping = data.get("labels", data) if isinstance(data, dict) else None
    if not isinstance(mapping, dict):
        raise ValueError(f"--labels file must hold a JSON object of name -> value, got {type(mapping).__name__}")
    return None, mapping


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the evaluation described by parsed ``args``; print the table; return 0."""
    label_set, labels = _labels_argument(args.labels)
    result = evaluate_folders(args.pred, args.gt, label_set=label_set, labels=labels, tolerance_mm=args.tolerance)
    print(markdown_table(result), end="")
    if args.out is not None:
        written = write_reports(result, args.out, plot=not args.no_plot)
        print("written: " + ", ".join(str(p) for p in written.values()))
    return 0
