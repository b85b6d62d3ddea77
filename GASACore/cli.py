"""``gasa-segment``: segment CT files, DICOM series or folders of them with a GASA / nnU-Net v2 model.

Usage::

    gasa-segment INPUT -o OUTPUT -m MODEL [--device auto|cpu|cuda|cuda:N] [--folds ...] [--no-tta]
                 [--step-size 0.5] [--fast] [--skip-air] [--progress json|bar|none] [--overwrite | --resume]
    torchrun --nproc_per_node=N [--nnodes ...] -m GASACore.cli INPUT_DIR -o OUT_DIR -m MODEL --resume
    gasa-segment --check-device [--device ...]
    gasa-segment --describe-model MODEL

The options of the run are :mod:`GASACore.options` (declared there, parsed into one ``SegmentOptions``);
``--progress json`` writes the events of :mod:`GASACore.events`. Exit code 0 only when every input was
segmented; on error a one-line message says what was expected and what was given, and an unexpected error
(a bug) gives one line naming it and the log file holding its traceback (on stderr too with ``--verbose``).
Output paths are checked and locked before any model work (:mod:`GASACore.io.outputs`,
:mod:`GASACore.io.lockfile`); a full disk, ``ulimit -f`` or a read-only folder leaves no file. A folder (batch) writes
``OUT_DIR/summary.json`` and ``summary.csv``; under torchrun each rank takes its shard of the cases
(:mod:`GASACore.cohort`).

SIGTERM and SIGINT (Ctrl-C) stop a run within one sliding window: no output is left, temporary files are
removed, one line says so and the exit code is 128 + the signal number. With ``GASA_ENGINE_NEW_SESSION=1``
in the environment (:data:`GASACore.events.NEW_SESSION_ENV`, set by the Slicer module) the engine first
makes itself the leader of a new session and writes a ``start`` event with its pid and process group.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from GASACore.errors import Cancelled, GASAError
from GASACore.events import ErrorEvent, EventSink
from GASACore.interrupt import Interrupt, InterruptibleSink, lead_new_session
from GASACore.malloc_env import apply_malloc_defaults
from GASACore.openmp_env import apply_openmp_defaults
from GASACore.options import Device, OptionError, SegmentOptions, add_arguments
from GASACore.progress import ProgressMode, make_sink

__all__ = ["build_parser", "main", "parse_args"]

logger = logging.getLogger("gasa-segment")

_LABEL_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".mha")
_USAGE = (
    "gasa-segment INPUT -o OUTPUT -m MODEL [options]\n"
    "       gasa-segment --check-device [--device {auto,cpu,cuda,cuda:N}]\n"
    "       gasa-segment --describe-model MODEL"
)


def build_parser() -> argparse.ArgumentParser:
    """The ``gasa-segment`` parser; :func:`parse_args` adds the checks between its arguments."""
    parser = argparse.ArgumentParser(
        prog="gasa-segment",
        usage=_USAGE,
        description=(
            "Segment abdominal CT with a GASA-UNet model bundle or any nnU-Net v2 results folder. INPUT is an "
            "image file (.nii, .nii.gz, .nrrd, .mha, .mhd), a DICOM series folder, or a folder of those (batch: "
            "one output per input, continuing past failures). The label map is written atomically in exactly "
            "the input's geometry."
        ),
    )
    parser.add_argument("input", type=Path, nargs="?", help="image file, DICOM series folder, or folder of images")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output label map (.nii.gz, .nii, .nrrd, .mha, or .seg.nrrd for 3D Slicer); a folder for batch input",
    )
    parser.add_argument(
        "-m",
        "--model",
        help=(
            "bundle folder or .zip, nnU-Net v2 results folder, or a catalogue id (ID or ID@VERSION; see gasa-models "
            "list), downloaded and verified on first use unless --offline"
        ),
    )
    add_arguments(parser)
    parser.add_argument("--series", default=None, help="SeriesInstanceUID when a DICOM folder holds several series")
    parser.add_argument("--format", default=".nii.gz", choices=_LABEL_SUFFIXES, help="output format in batch mode")
    parser.add_argument("--overlay", type=Path, default=None, help="also write an axial/coronal PNG overlay here")
    parser.add_argument("--volumes", type=Path, default=None, help="also write per-label volumes (ml) as .csv or .json")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: refuse)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help=(
            "skip the cases whose output is already complete (a killed run restarts where it stopped); nothing "
            "is replaced"
        ),
    )
    parser.add_argument(
        "--progress",
        choices=ProgressMode.values(),
        default=ProgressMode.AUTO.value,
        help="json: one JSON event per line on stdout",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    actions = parser.add_argument_group("other actions (they take no INPUT, -o or -m)")
    actions.add_argument(
        "--check-device",
        action="store_true",
        help=(
            "print one JSON object and exit: the device --device comes to, whether CUDA is usable and why, "
            "the GPUs, torch and CUDA versions and the build's architectures"
        ),
    )
    actions.add_argument(
        "--describe-model",
        type=Path,
        metavar="MODEL",
        help=(
            "print one JSON object and exit: what the model is (name, labels with colours and terminology, "
            "spacing, patch size, folds), read without torch and without loading weights; MODEL may be a catalogue "
            "id (described from the catalogue when not installed, never downloaded)"
        ),
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; a segmentation needs INPUT, -o and -m, an action (``--check-device``,
    ``--describe-model``) none of them.

    Exits with status 2 and argparse's usage message when they are missing or misplaced.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    run_arguments = {"INPUT": args.input, "-o/--output": args.output, "-m/--model": args.model}
    asked = {"--check-device": args.check_device, "--describe-model": args.describe_model is not None}
    actions = [name for name, given in asked.items() if given]
    if len(actions) > 1:
        parser.error(f"{actions[0]} and {actions[1]} cannot be asked together")
    if actions:
        given = [name for name, value in run_arguments.items() if value is not None]
        if given:
            parser.error(f"{actions[0]} takes no {', '.join(given)}")
    else:
        missing = [name for name, value in run_arguments.items() if value is None]
        if missing:
            parser.error(f"the following arguments are required: {', '.join(missing)}")
    if args.resume and args.overwrite:
        parser.error("--resume keeps complete outputs and --overwrite replaces them: choose one")
    return args


def _echo(text: str, *, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout)


def _run(args: argparse.Namespace, sink: EventSink, interrupt: Interrupt | None = None) -> int:
    """A segmentation run (one input, a folder, or this rank's shard of a torchrun cohort): GASACore.cohort."""
    from GASACore.cohort import RunRequest, run_cases

    request = RunRequest(
        input=args.input,
        output=args.output,
        model=args.model,
        options=SegmentOptions.from_args(args),
        series=args.series,
        suffix=args.format,
        overwrite=args.overwrite,
        resume=args.resume,
        overlay=args.overlay,
        volumes=args.volumes,
        progress_json=args.progress == ProgressMode.JSON,
    )
    return run_cases(request, sink, _echo, interrupt)


def _progress_mode(args: argparse.Namespace) -> str:
    """``--progress auto`` under torchrun: rank 0 alone draws a bar (several on one terminal are unreadable)."""
    if args.progress == ProgressMode.AUTO and os.environ.get("RANK", "0").strip() not in ("", "0"):
        return ProgressMode.NONE
    return args.progress


def _check_device(args: argparse.Namespace) -> int:
    """``--check-device``: print the device report (one JSON object); also when torch cannot be imported."""
    try:
        request = Device.parse(args.device)
    except OptionError as err:
        print(f"gasa-segment: error: {err.for_command_line()}", file=sys.stderr)
        return 1
    try:
        from GASACore.inference.device import check_device
    except ImportError as err:  # e.g. Slicer before its PyTorch extension installed torch
        report: dict[str, Any] = {
            "device": "cpu",
            "requested": str(request),
            "cuda_usable": False,
            "reason": f"torch cannot be imported ({type(err).__name__}: {err}); install torch first",
            "unusable_reason": "torch cannot be imported",
            "torch": None,
        }
    else:
        report = check_device(request)
    print(json.dumps(report))
    return 0


def _description(model: str | Path) -> dict[str, Any]:
    """A model path's description, or a catalogue id's (with its licence, recipe and install state; no download)."""
    from GASACore.bundle.describe import describe_model
    from GASACore.models import describe_catalog_model, lookup

    if not Path(model).expanduser().exists() and lookup(str(model)) is not None:
        return describe_catalog_model(str(model))
    return describe_model(model)


def _describe_model(args: argparse.Namespace) -> int:
    """``--describe-model``: print the model's description (one JSON object), torch-free."""
    try:
        description = _description(args.describe_model)
    except (GASAError, OSError, ValueError) as err:
        print(f"gasa-segment: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(description))
    return 0


def _ignore_file_size_signal() -> None:
    """Past ``ulimit -f`` a write fails (EFBIG), reported in one line, instead of SIGXFSZ killing the process."""
    import signal
    import threading

    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gasa-segment``; returns the process exit code."""
    apply_openmp_defaults()  # first: OpenMP reads its wait policy once, when torch loads it
    apply_malloc_defaults()  # windows reuse their heap memory instead of faulting it in again
    lead_new_session()
    _ignore_file_size_signal()
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.check_device:
        return _check_device(args)
    if args.describe_model is not None:
        return _describe_model(args)
    sink = make_sink(_progress_mode(args))
    interrupt = Interrupt()
    interrupt.install()
    try:
        return _run(args, InterruptibleSink(sink, interrupt), interrupt)
    except (Cancelled, KeyboardInterrupt) as err:
        interrupt.stop_listening()
        message = interrupt.outcome() if interrupt.signum else f"cancelled: {err}" if str(err) else "cancelled"
        sink.emit(ErrorEvent(message))
        print(f"gasa-segment: {message}", file=sys.stderr)
        return 128 + interrupt.signum if interrupt.signum else 130
    except (GASAError, OSError, ValueError) as err:
        sink.emit(ErrorEvent(str(err)))
        print(f"gasa-segment: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # a bug: one line and the log's path, never a traceback (unless --verbose)
        from GASACore.cohort.crash import crash_line

        line = crash_line(err, f"gasa-segment {' '.join(sys.argv[1:] if argv is None else argv)}")
        sink.emit(ErrorEvent(line))
        print(f"gasa-segment: {line}", file=sys.stderr)
        return 1
    finally:
        interrupt.restore()
        sink.close()
        if argv is None:  # the command line's own run: the interpreter exits next
            gc.freeze()  # so its last garbage collection skips torch's object graph (seconds at exit)


if __name__ == "__main__":
    sys.exit(main())
