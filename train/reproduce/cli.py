"""The ``reproduce`` sub-command of ``gasa-train``: run a table of the paper and write it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from train.reproduce.tables import DATASETS, TABLES

__all__ = ["add_reproduce_parser", "run_reproduce"]

_DESCRIPTION = """\
Reproduce Table 1 (GASA on the nnMamba, UNETR, V-Net and nnU-Net backbones) or Table 2 (CBAM, AT, MAT and GASA
at the end of nnU-Net's encoder) of the GASA-UNet paper on one data set: plan (when the plans are missing),
train every row x fold x seed with nnU-Net's trainer, evaluate Dice and NSD of each fold's validation cases
(or, with a held-out test set, as the paper: the ensemble of each row's folds predicts it), and write the
table in the paper's layout (OUT/table<N>.md, .csv, .json; differences to the baseline in brackets) with
per-organ plots (OUT/<dataset>/table<N>_per_organ.png). Run it once per data set into the same OUT; the
table holds every data set found there.

Schedule: the paper's (1000 epochs x 250 iterations, folds 0-4, one fixed seed); --tiny is a CPU smoke run
(1 epoch x 2 iterations, fold all, tiny networks when it has to plan). Models of seed S go to
OUT/<dataset>/seed_S (as nnUNet_results), logs to OUT/<dataset>/logs. --continue skips finished runs and
resumes an interrupted one from its last checkpoint. Rows this installation cannot train (a network not in
the registry, nnMamba without CUDA) and the paper's own gaps (MAT on AMOS) are skipped with the reason in
the table's notes."""


def add_reproduce_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``reproduce`` to ``gasa-train``'s sub-commands and return its parser (``func``: :func:`run_reproduce`)."""
    parser = subparsers.add_parser(
        "reproduce",
        help="run a table of the paper (1: backbones, 2: attention blocks) and write it",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("table", type=int, choices=sorted(TABLES), help="the paper's table number")
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS), help="the table column to reproduce")
    parser.add_argument(
        "--dataset-id",
        help="the converted nnU-Net data set, id or DatasetXXX_Name (default: `gasa-train convert`'s id: "
        + ", ".join(f"{k} {c.default_dataset}" for k, c in DATASETS.items())
        + ")",
    )
    parser.add_argument("--out", type=Path, default=Path("reproduction"), help="reproduction folder (./reproduction)")
    parser.add_argument("--methods", nargs="+", metavar="NETWORK", help="a subset of the table's rows (registry names)")
    parser.add_argument("--folds", nargs="+", help="folds (default: 0 1 2 3 4; with --tiny: all)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default: 0, the paper's one fixed seed)")
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default cuda; with --tiny cpu")
    parser.add_argument(
        "--nproc-per-node", type=int, default=1, help="GPUs per run; above 1 each run starts under torchrun (DDP)"
    )
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: 1 epoch x 2 iterations, fold all")
    parser.add_argument("--epochs", type=int, help="epochs per run (overrides the schedule)")
    parser.add_argument("--iterations", type=int, help="training iterations per epoch (overrides the schedule)")
    parser.add_argument("--continue", dest="resume", action="store_true", help="skip finished runs, resume others")
    parser.add_argument(
        "--export", action="store_true", help="export a model bundle per row and seed (OUT/<dataset>/bundles/)"
    )
    test = parser.add_argument_group("held-out test set (the paper's protocol; default: imagesTs + labelsTs if both)")
    test.add_argument("--test-images", type=Path, metavar="DIR", help="test images (case_0000.nii.gz)")
    test.add_argument("--test-labels", type=Path, metavar="DIR", help="their reference label maps (case.nii.gz)")
    parser.add_argument("--plans-name", default="nnUNetPlans", help="base plans name (default nnUNetPlans)")
    parser.add_argument("-j", "--num-processes", type=int, default=2, help="planning processes (default 2)")
    for name in ("raw", "preprocessed"):
        parser.add_argument(f"--nnunet-{name}", metavar="DIR", help=f"nnUNet_{name} folder (default: the environment)")
    parser.set_defaults(func=run_reproduce)
    return parser


def run_reproduce(args: argparse.Namespace) -> int:
    """Run the reproduction the parsed ``args`` describe; print the table and the files; return 0."""
    from train.planning import configure_nnunet_paths
    from train.reproduce.runner import ReproduceRequest, reproduce

    configure_nnunet_paths(args.nnunet_raw, args.nnunet_preprocessed, require=("nnUNet_preprocessed",))
    request = ReproduceRequest(
        table=args.table,
        dataset_key=args.dataset,
        out=args.out,
        dataset=args.dataset_id,
        networks=args.methods,
        folds=args.folds,
        seeds=args.seeds,
        device=args.device or ("cpu" if args.tiny else "cuda"),
        nproc_per_node=args.nproc_per_node,
        tiny=args.tiny,
        epochs=args.epochs,
        iterations=args.iterations,
        resume=args.resume,
        export=args.export,
        test_images=args.test_images,
        test_labels=args.test_labels,
        plans_name=args.plans_name,
        num_processes=args.num_processes,
    )
    result = reproduce(request)
    print(result.written["markdown"].read_text(encoding="utf-8"), end="")
    print(f"trained {len(result.trained)} run(s); {len(result.skipped_done)} finished before, skipped")
    print("written: " + ", ".join(str(p) for p in [*result.written.values(), *result.bundles.values()]))
    return 0
