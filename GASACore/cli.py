"""``gasa-segment``: segment CT files, DICOM series or folders of them with a GASA / nnU-Net v2 model.

Usage: ``gasa-segment INPUT -o OUTPUT -m MODEL [--device auto|cpu|cuda] [--folds ...] [--no-tta]
[--step-size 0.5] [--fast] [--skip-air] [--progress json|bar|none] [--overwrite]``.
Exit code 0 only when every input was segmented; on error a one-line message says what was expected
and what was given.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from GASACore.errors import Cancelled, GASAError

__all__ = ["build_parser", "main"]

logger = logging.getLogger("gasa-segment")

_LABEL_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".mha")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gasa-segment",
        description=(
            "Segment abdominal CT with a GASA-UNet model bundle or any nnU-Net v2 results folder. INPUT is an "
            "image file (.nii, .nii.gz, .nrrd, .mha, .mhd), a DICOM series folder, or a folder of those (batch: "
            "one output per input, continuing past failures). The label map is written atomically in exactly "
            "the input's geometry."
        ),
    )
    parser.add_argument("input", type=Path, help="image file, DICOM series folder, or folder of images")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output label map (.nii.gz, .nii, .nrrd, .mha, or .seg.nrrd for 3D Slicer); a folder for batch input",
    )
    parser.add_argument(
        "-m", "--model", type=Path, required=True, help="bundle folder or .zip, or an nnU-Net v2 results folder"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when usable")
    parser.add_argument("--folds", nargs="+", default=None, help="folds to ensemble, e.g. 0 1 2 or all (default: all)")
    parser.add_argument("--no-tta", action="store_true", help="no mirroring test-time augmentation (about 8x faster)")
    parser.add_argument("--step-size", type=float, default=0.5, help="window step as a fraction of the patch (0-1]")
    parser.add_argument("--fast", action="store_true", help="first fold only, no TTA, step 1.0")
    parser.add_argument("--skip-air", action="store_true", help="skip windows that hold only air (CT models)")
    parser.add_argument("--batch-size", type=int, default=1, help="windows per forward pass (default 1)")
    parser.add_argument("--series", default=None, help="SeriesInstanceUID when a DICOM folder holds several series")
    parser.add_argument("--format", default=".nii.gz", choices=_LABEL_SUFFIXES, help="output format in batch mode")
    parser.add_argument("--overlay", type=Path, default=None, help="also write an axial/coronal PNG overlay here")
    parser.add_argument("--volumes", type=Path, default=None, help="also write per-label volumes (ml) as .csv or .json")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: refuse)")
    parser.add_argument(
        "--progress", choices=("auto", "json", "bar", "none"), default="auto", help="json: one JSON object per line"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    return parser


def _validate(args: argparse.Namespace) -> None:
    if not 0.0 < args.step_size <= 1.0:
        raise GASAError(f"--step-size must be in (0, 1], got {args.step_size}")
    if args.batch_size < 1:
        raise GASAError(f"--batch-size must be at least 1, got {args.batch_size}")


def _output_for(case_name: str, args: argparse.Namespace, batch: bool) -> Path:
    if batch or args.output.is_dir():
        return args.output / f"{case_name}{args.format}"
    return args.output


def _run(args: argparse.Namespace, reporter) -> int:
    from GASACore.bundle import load_model
    from GASACore.io import find_cases, read_image, write_label_map
    from GASACore.pipeline import SegmentOptions, segment
    from GASACore.report import label_volumes_ml, write_overlay_png, write_volumes

    _validate(args)
    cases = find_cases(args.input)
    batch = len(cases) > 1 or (args.input.is_dir() and not cases[0].is_dicom)
    if batch:
        args.output.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, folds=args.folds)
    options = SegmentOptions(
        device=args.device,
        tta=not args.no_tta,
        step_size=args.step_size,
        fast=args.fast,
        skip_air=args.skip_air,
        batch_size=args.batch_size,
    )
    failures = 0
    for index, case in enumerate(cases):
        reporter.case(case.name, index, len(cases))
        output = _output_for(case.name, args, batch)
        try:
            if output.exists() and not args.overwrite:
                raise GASAError(f"output {output} exists; pass --overwrite to replace it or choose another path")
            image = read_image(case.path, series=args.series)
            result = segment(image, model, options=options, progress=reporter)
            reporter("export", 0.5)
            write_label_map(result.labels, result.geometry, output, label_info=model.labels, overwrite=args.overwrite)
            volumes = label_volumes_ml(result.labels, result.geometry, model.labels)
            if args.volumes and not batch:
                write_volumes(volumes, args.volumes)
            if args.overlay and not batch:
                write_overlay_png(image.array, result.labels, result.geometry, model.labels, args.overlay)
            reporter("export", 1.0)
            reporter.done(str(output), case=case.name, device=result.device, seconds=round(result.timings["total"], 2))
            logger.info("%s -> %s in %.1f s on %s", case.name, output, result.timings["total"], result.device)
            if args.progress != "json":
                print(f"{case.name}: {result.device} ({result.device_reason}), {result.timings['total']:.1f} s")
                _print_volumes(case.name, output, volumes)
        except Cancelled:
            raise
        except (GASAError, OSError, ValueError) as err:
            failures += 1
            message = f"{case.name}: {err}"
            reporter.error(message, case=case.name)
            print(f"gasa-segment: error: {message}", file=sys.stderr)
            if not batch:
                return 1
    if batch:
        print(f"gasa-segment: {len(cases) - failures} of {len(cases)} inputs segmented", file=sys.stderr)
    return 1 if failures else 0


def _print_volumes(name: str, output: Path, volumes: dict[str, float]) -> None:
    print(f"{name}: wrote {output}")
    for label, ml in volumes.items():
        print(f"  {label:<28s} {ml:10.1f} ml")


def _cancel_on_signal(signum: int, _frame: object) -> None:
    raise Cancelled(f"stopped by signal {signal.Signals(signum).name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gasa-segment``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    from GASACore.progress import make_reporter

    reporter = make_reporter(args.progress)
    signal.signal(signal.SIGTERM, _cancel_on_signal)
    try:
        return _run(args, reporter)
    except (Cancelled, KeyboardInterrupt) as err:
        reporter.error(f"cancelled: {err}" if str(err) else "cancelled")
        print("gasa-segment: cancelled", file=sys.stderr)
        return 130
    except (GASAError, OSError, ValueError) as err:
        reporter.error(str(err))
        print(f"gasa-segment: error: {err}", file=sys.stderr)
        return 1
    finally:
        reporter.close()


if __name__ == "__main__":
    sys.exit(main())
