"""``gasa-train``: from a public CT data set to a GASASegmenter model bundle, on nnU-Net v2.

The path, one sub-command per step::

    gasa-train convert btcv /data/BTCV --dataset-id 501 --nnunet-raw RAW     # public data -> nnU-Net raw
    gasa-train plan 501 --nnunet-raw RAW --nnunet-preprocessed PRE          # fingerprint, plans, GASA plans
    gasa-train plan 501 --plan paper-btcv --variants gasa-unet nnunet-cbam vnet-gasa  # the paper's BTCV plan
    gasa-train train 501 --variant gasa-unet --fold 0 --device cuda          # nnU-Net training (GASA network)
    gasa-train train 501 --variant gasa-l --init-from NNUNET_RESULTS_FOLDER          # from a published model
    torchrun --nproc_per_node=4 -m train.cli train 501 --variant gasa-l --fold 0   # multi-GPU DDP
    gasa-train evaluate PRED_DIR REF_DIR --labels btcv                      # Dice / NSD per organ
    gasa-train export RESULTS/Dataset501_BTCV/GASATrainer__nnUNetPlans_gasa-unet__3d_fullres bundle/ --label-set btcv
    gasa-train reproduce 2 --dataset btcv --dataset-id 501 --out repro/          # a table of the paper

``gasa-segment INPUT -o OUT -m bundle/`` (or the 3D Slicer module) then runs the bundle.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from GASACore.network import GASABlockOptions, PositionalEmbedding
from train.planning.gasa_plans import GASA_VARIANTS, PLAN_CHOICES, PLAN_VARIANTS, TRAIN_VARIANTS
from train.planning.plan import PLANNERS

__all__ = ["build_parser", "gasa_options_from_args", "main"]

_EPILOG = "Steps: convert -> plan -> train -> evaluate -> export. Run `gasa-train STEP -h` for each."
_FOLDER_HELP = "(default: the environment variable of the same name)"


def _add_nnunet_folders(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        parser.add_argument(f"--nnunet-{name}", metavar="DIR", help=f"nnUNet_{name} folder {_FOLDER_HELP}")


def _add_plan_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="nnU-Net fingerprint + plans + pre-processing, then GASA-UNet / GASA-L plans",
        description=(
            "Step 2 of public data set -> bundle. Runs nnU-Net v2's fingerprint extraction, experiment planning "
            "and pre-processing of a converted data set (nnUNet_raw/DatasetXXX_Name), then writes "
            "<plans>_gasa-unet.json and <plans>_gasa-l.json (or the networks of --variants) next to nnU-Net's plans: "
            "the same pre-processing and 3d_fullres network topology, with the GASA block added after the encoder "
            "(GASA-L: residual encoder with 3,..,3,5 blocks and one decoder conv per stage); V-Net, UNETR and "
            "nnMamba keep their own topology at nnU-Net's patch rounded to multiples of 16. --plan paper-btcv uses "
            "the paper's BTCV plan instead of the planner's topology. Each plan is checked by building its network "
            "through nnU-Net's get_network_from_plans. Next step: `gasa-train train`."
        ),
    )
    parser.add_argument("dataset", help="data set id (501) or name (Dataset501_BTCV) in nnUNet_raw")
    _add_nnunet_folders(parser, "raw", "preprocessed")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=list(GASA_VARIANTS),
        choices=PLAN_VARIANTS,
        metavar="NETWORK",
        help=f"networks to write plans for, of: {', '.join(PLAN_VARIANTS)} (default: {', '.join(GASA_VARIANTS)}; "
        "--gasa-* options apply to GASA variants, the others take their block's defaults)",
    )
    parser.add_argument(
        "--plan",
        default="nnunet",
        choices=PLAN_CHOICES,
        help="network topology: nnunet (nnU-Net's planner decides; default) or paper-btcv (the paper's BTCV plan: "
        "patch 48x192x192, 6 stages, bottleneck 6^3), written as base plans <plans>_paper-btcv next to nnU-Net's "
        "(same pre-processing); train them with --plans-name <plans>_paper-btcv",
    )
    parser.add_argument(
        "--patch-size",
        type=int,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="nnU-Net's topology at this patch (a multiple of its total stride), as base plans <plans>_patchXxYxZ "
        "(e.g. a cubic bottleneck for nnunet-mat)",
    )
    parser.add_argument(
        "--planner",
        default="default",
        choices=sorted(PLANNERS),
        help="nnU-Net planner: default (PlainConvUNet) or a residual-encoder preset (ResidualEncoderUNet, for gasa-l)",
    )
    parser.add_argument(
        "--plans-name", help="base plans name (default: the planner's, nnUNetPlans / nnUNetResEncUNetLPlans ...)"
    )
    _add_gasa_options(parser)
    small = parser.add_argument_group("planner size (CPU / small GPUs; defaults are nnU-Net's)")
    small.add_argument("--gpu-memory-gb", type=float, help="memory target that sizes the patch (nnU-Net: 8)")
    small.add_argument(
        "--target-spacing",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="3d_fullres target spacing in mm, image axis order",
    )
    small.add_argument("--base-features", type=int, help="features of the first stage (nnU-Net: 32)")
    small.add_argument("--max-features", type=int, help="feature cap (nnU-Net: 320)")
    parser.add_argument(
        "--configurations",
        nargs="+",
        default=["3d_fullres"],
        help="configurations to pre-process (default 3d_fullres, the one GASA trains)",
    )
    parser.add_argument("-j", "--num-processes", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--no-integrity-check", action="store_true", help="skip nnU-Net's data set check")
    parser.set_defaults(func=_run_plan)


def _add_gasa_options(parser: argparse.ArgumentParser, title: str = "GASA block (defaults: the paper's)") -> None:
    """``--gasa-*`` flags, one per ``GASABlockOptions`` field; defaults and choices come from it (the paper's)."""
    defaults = GASABlockOptions()
    default_pe = defaults.positional_embedding.value
    group = parser.add_argument_group(title)
    group.add_argument("--gasa-dim", type=int, default=defaults.dim, help=f"token dimension n ({defaults.dim})")
    group.add_argument(
        "--gasa-heads",
        type=int,
        default=defaults.heads,
        help=f"attention heads; must divide --gasa-dim ({defaults.heads})",
    )
    group.add_argument(
        "--gasa-pe",
        default=default_pe,
        choices=PositionalEmbedding.values(),
        help=f"positional embedding: voxels (APE, paper best), tokens (BPE) or none ({default_pe})",
    )
    group.add_argument("--gasa-qkv-norm", action="store_true", help="LayerNorm after the qkv projection (off)")
    group.add_argument(
        "--gasa-dropout",
        type=float,
        default=defaults.dropout,
        help=f"dropout on the GASA features ({defaults.dropout})",
    )


def gasa_options_from_args(args: argparse.Namespace) -> GASABlockOptions:
    """The validated ``GASABlockOptions`` of the ``--gasa-*`` flags."""
    return GASABlockOptions(
        dim=args.gasa_dim,
        heads=args.gasa_heads,
        positional_embedding=args.gasa_pe,
        qkv_norm=args.gasa_qkv_norm,
        dropout=args.gasa_dropout,
    )


def _run_plan(args: argparse.Namespace) -> int:
    from train.planning import PlannerSettings, configure_nnunet_paths, run_planning

    configure_nnunet_paths(args.nnunet_raw, args.nnunet_preprocessed, require=("nnUNet_raw", "nnUNet_preprocessed"))
    options = gasa_options_from_args(args)
    settings = PlannerSettings(
        plans_name=args.plans_name,
        planner=args.planner,
        gpu_memory_gb=args.gpu_memory_gb,
        target_spacing=tuple(args.target_spacing) if args.target_spacing else None,
        base_features=args.base_features,
        max_features=args.max_features,
    )
    result = run_planning(
        args.dataset,
        settings=settings,
        variants=args.variants,
        options=options,
        configurations=args.configurations,
        num_processes=args.num_processes,
        verify_integrity=not args.no_integrity_check,
        plan=args.plan,
        patch_size=args.patch_size,
    )
    print(f"plans: {result.base_plans} (train with --plans-name {result.base_plans.stem})")
    for variant, path in result.gasa_plans.items():
        print(f"{variant}: {path}")
    for plans, count in result.parameters.items():
        print(f"  {plans}: {count:,} parameters")
    return 0


def _add_train_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one fold with nnU-Net v2 (CPU, CUDA, or multi-GPU DDP via torchrun)",
        description=(
            "Step 3 of public data set -> bundle. Trains a planned data set with nnU-Net v2's trainer (its "
            "augmentation, SGD + poly LR, Dice + CE, deep supervision) on the GASA plans. Writes "
            "nnUNet_results/DatasetXXX/GASATrainer__<plans>__3d_fullres/fold_N with checkpoints, "
            "training_log_*.txt, progress.png (loss / pseudo-Dice / lr curves), epochs.jsonl (one JSON line per "
            "epoch) and gasa_training.json (recipe and time), then runs nnU-Net's validation "
            "(fold_N/validation/summary.json). Multi-GPU: `torchrun --nproc_per_node=N -m train.cli train ...` "
            "(NCCL on CUDA; gloo with --device cpu); the batch size in the plans is the global batch, split "
            "over the ranks. With --init-from a published nnU-Net v2 model: the data set is pre-processed with that "
            "model's plans (written as <plans>_from<id>.json into its nnUNet_preprocessed folder, or checked), the "
            "GASA network is built on its plan (gasa-unet on PlainConvUNet, gasa-l on ResidualEncoderUNet models) "
            "and starts from its weights with the GASA inputs zero-initialised, so its first output is the base "
            "model's, then trains with the same recipe (the paper's: nnU-Net's). Next step: `gasa-train export`."
        ),
    )
    parser.add_argument("dataset", help="data set id or name (planned with `gasa-train plan`, or raw with --init-from)")
    _add_nnunet_folders(parser, "raw", "preprocessed", "results")
    parser.add_argument(
        "--variant",
        default=TRAIN_VARIANTS[0],
        choices=TRAIN_VARIANTS,
        metavar="NETWORK",
        help=f"network: {', '.join(TRAIN_VARIANTS)} (nnunet: nnU-Net's own plans; default {TRAIN_VARIANTS[0]}). "
        "V-Net, UNETR and nnMamba train without deep supervision (they have none), nnMamba at lr 1e-4 (the paper's)",
    )
    parser.add_argument("--fold", default="0", help="0-4 (5-fold cross-validation) or all (default 0)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="default cuda")
    parser.add_argument("--plans-name", default="nnUNetPlans", help="base plans name (default nnUNetPlans)")
    parser.add_argument("--epochs", type=int, default=1000, help="epochs (nnU-Net and paper: 1000)")
    parser.add_argument("--iterations", type=int, default=250, help="training iterations per epoch (250)")
    parser.add_argument("--val-iterations", type=int, default=50, help="pseudo-Dice iterations per epoch (50)")
    parser.add_argument("--save-every", type=int, default=50, help="write checkpoint_latest every N epochs (50)")
    parser.add_argument(
        "--continue",
        dest="continue_training",
        action="store_true",
        help="resume from the fold's last checkpoint (final, latest, then best)",
    )
    parser.add_argument("--no-validation", action="store_true", help="skip the final sliding-window validation")
    parser.add_argument(
        "--augmentation-workers",
        type=int,
        help="data augmentation processes (nnUNet_n_proc_DA; 0 = in the main process)",
    )
    parser.add_argument(
        "-j",
        "--num-processes",
        type=int,
        help="processes for the final validation's resampling / export (nnUNet_def_n_proc; nnU-Net: 8)",
    )
    _add_recipe_options(parser)
    init = parser.add_argument_group("start from a published nnU-Net v2 model")
    init.add_argument(
        "--init-from",
        metavar="FOLDER",
        help="its results folder (<Trainer>__<plans>__<configuration> with plans.json, dataset.json, fold_*)",
    )
    init.add_argument("--init-fold", help="its fold (0-4 or all; default: --fold if it has it, else all / its only)")
    init.add_argument(
        "--init-checkpoint", choices=["final", "best"], help="its checkpoint (default: final, best where none)"
    )
    _add_gasa_options(parser, "GASA block with --init-from (defaults: the paper's; otherwise from the plans)")
    parser.set_defaults(func=_run_train)


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    from train.training.recipe import OPTIMIZERS

    group = parser.add_argument_group(
        "training recipe (defaults: nnU-Net's; a resumed training keeps the recipe it recorded)"
    )
    group.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd (nnU-Net: momentum 0.99, Nesterov) or adamw")
    group.add_argument("--lr", dest="initial_lr", type=float, help="initial learning rate (nnU-Net: 1e-2)")
    group.add_argument("--weight-decay", type=float, help="weight decay (nnU-Net: 3e-5)")
    group.add_argument(
        "--oversample-foreground", type=float, help="share of patches centred on foreground, 0-1 (nnU-Net: 0.33)"
    )
    group.add_argument(
        "--no-mirroring", dest="mirror", action="store_const", const=False, help="no mirror augmentation"
    )
    group.add_argument(
        "--contrast-phase",
        dest="p_contrast_phase",
        type=float,
        help="probability of per-organ contrast-phase HU shifts on a patch, 0-1 (off)",
    )


_RECIPE_ARGS = ("optimizer", "initial_lr", "weight_decay", "oversample_foreground", "mirror", "p_contrast_phase")


def recipe_from_args(args: argparse.Namespace) -> Any:
    """A ``TrainingRecipe`` from the options given (the network's defaults for the rest); ``None`` when none was."""
    from train.training.recipe import recipe_for

    given = {name: getattr(args, name) for name in _RECIPE_ARGS if getattr(args, name, None) is not None}
    return recipe_for(args.variant, **given) if given else None


def _run_train(args: argparse.Namespace) -> int:
    if args.augmentation_workers is not None:
        os.environ["nnUNet_n_proc_DA"] = str(args.augmentation_workers)  # noqa: SIM112 - nnU-Net reads it
    if args.num_processes is not None:  # read when nnunetv2 is first imported, which happens below
        os.environ["nnUNet_def_n_proc"] = str(args.num_processes)  # noqa: SIM112 - nnU-Net reads it
    from train.planning import configure_nnunet_paths
    from train.training import InitFrom, Schedule, run_gasa_training

    configure_nnunet_paths(
        args.nnunet_raw,
        args.nnunet_preprocessed,
        args.nnunet_results,
        require=("nnUNet_preprocessed", "nnUNet_results"),
    )
    options = gasa_options_from_args(args)
    init = None
    if args.init_from:
        init = InitFrom(Path(args.init_from), args.init_fold, args.init_checkpoint, options, args.num_processes or 2)
    elif options != GASABlockOptions() or args.init_fold or args.init_checkpoint:
        raise ValueError("--gasa-* / --init-* options apply with --init-from; otherwise the GASA plans hold them")
    schedule = Schedule(args.epochs, args.iterations, args.val_iterations, args.save_every)
    run = run_gasa_training(
        args.dataset,
        variant=args.variant,
        fold=args.fold,
        device=args.device,
        schedule=schedule,
        continue_training=args.continue_training,
        validate=not args.no_validation,
        base_plans_name=args.plans_name,
        init_from=init,
        recipe=recipe_from_args(args),
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {run.fold_folder} in {run.wall_time_s:.0f} s (world size {run.world_size})")
        print(f"results folder for `gasa-train export`: {run.results_folder}")
    return 0


def _add_export_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="nnU-Net v2 results folder -> GASASegmenter model bundle",
        description=(
            "Last step of public data set -> bundle. Writes a bundle folder (model.json + one SHA-256-checked "
            "safetensors file per fold) that gasa-segment and the 3D Slicer module load: network and "
            "pre-processing from plans.json, labels with names, colours and SNOMED CT codes from the chosen "
            "label set, and a training record (data set, recipe, validation Dice, training time)."
        ),
    )
    parser.add_argument("results", help="nnUNet_results/DatasetXXX/<Trainer>__<plans>__<configuration> folder")
    parser.add_argument("bundle", help="new bundle folder (must not exist)")
    parser.add_argument(
        "--label-set",
        required=True,
        choices=["btcv", "amos", "kits23"],
        help="label names / colours / terminology matching the data set's label values",
    )
    parser.add_argument("--name", help="model name (default: the bundle folder name)")
    parser.add_argument("--version", default="0.1.0", help="model version (default 0.1.0)")
    parser.add_argument("--description", help="one-paragraph description")
    parser.add_argument("--license", dest="license_", help="licence of the weights (follow the training data's)")
    parser.add_argument("--intended-use", default="research only; not for clinical use")
    parser.add_argument("--folds", nargs="+", help="folds to include (fold_0 ... / 0 ...; default: all)")
    parser.add_argument(
        "--orientation",
        help="re-orient inputs to this ITK code (e.g. RAS, the training images') before inference: for models "
        "trained with --no-mirroring (default: the array as stored, as nnU-Net)",
    )
    parser.add_argument(
        "--checkpoint", choices=["final", "best"], help="checkpoint of every fold (default: final, best where none)"
    )
    parser.add_argument(
        "--base-license",
        help="licence of the base model of an --init-from training (default: its dataset.json licence, if any)",
    )
    parser.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from train.export import export_results_folder

    metadata = {"version": args.version, "intended_use": args.intended_use}
    for key, value in (("name", args.name), ("description", args.description), ("license", args.license_)):
        if value:
            metadata[key] = value
    bundle = export_results_folder(
        args.results,
        args.bundle,
        label_set=args.label_set,
        metadata=metadata,
        folds=args.folds,
        checkpoint=args.checkpoint,
        base_license=args.base_license,
        orientation=args.orientation,
    )
    print(f"bundle {bundle.root}: {len(bundle.folds)} fold(s), {len(bundle.labels)} labels, verified")
    return 0


def _optional_parsers() -> list[tuple[str, Callable[[Any], Any] | None, str]]:
    """The convert / evaluate / reproduce sub-commands, owned by train.datasets / train.evaluation / train.reproduce."""
    found: list[tuple[str, Callable[[Any], Any] | None, str]] = []
    for step, module_name, function in (
        ("convert", "train.datasets", "add_convert_parser"),
        ("evaluate", "train.evaluation", "add_evaluate_parser"),
        ("reproduce", "train.reproduce", "add_reproduce_parser"),
    ):
        try:
            module = __import__(module_name, fromlist=[function])
            found.append((step, getattr(module, function), ""))
        except (ImportError, AttributeError) as err:
            found.append((step, None, f"{type(err).__name__}: {err}"))
    return found


def build_parser() -> argparse.ArgumentParser:
    """The ``gasa-train`` parser with all five sub-commands."""
    parser = argparse.ArgumentParser(
        prog="gasa-train",
        description=(
            "Train GASA-UNet on nnU-Net v2 and export a GASASegmenter model bundle: convert a public data set "
            "(BTCV, AMOS, KiTS23) -> plan -> train -> evaluate -> export."
        ),
        epilog=_EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="STEP", required=True)
    optional = dict((step, (adder, error)) for step, adder, error in _optional_parsers())
    for step, add in (
        ("convert", None),
        ("plan", _add_plan_parser),
        ("train", _add_train_parser),
        ("evaluate", None),
        ("export", _add_export_parser),
        ("reproduce", None),
    ):
        if add is not None:
            add(subparsers)
            continue
        adder, error = optional[step]
        if adder is not None:
            adder(subparsers)
        else:
            stub = subparsers.add_parser(step, help=f"(unavailable: {error})")
            stub.set_defaults(func=lambda _args, _e=error, _s=step: _unavailable(_s, _e))
    return parser


def _unavailable(step: str, error: str) -> int:
    print(f"gasa-train {step} is not available in this installation ({error})", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gasa-train``; returns the exit code (0 on success)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"gasa-train {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
