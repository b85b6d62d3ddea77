"""``gasa-segment``: segment CT files, DICOM series or folders of them with a GASA / nnU-Net v2 model.

Usage::

    gasa-segment INPUT -o OUTPUT -m MODEL [--device auto|cpu|cuda|cuda:N] [--folds ...] [--no-tta]
                 [--step-size 0.5] [--fast] [--skip-air] [--progress json|bar|none] [--overwrite]
    gasa-segment --check-device [--device ...]
    gasa-segment --describe-model MODEL

The options of the run are :mod:`GASACore.options` (declared there, parsed into one ``SegmentOptions``);
``--progress json`` writes the events of :mod:`GASACore.events`. Exit code 0 only when every input was
segmented; on error a one-line message says what was expected and what was given.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from GASACore.errors import Cancelled, GASAError
from GASACore.events import CaseEvent, DoneEvent, ErrorEvent, EventSink, Stage
from GASACore.interrupt import Interrupt, InterruptibleSink, lead_new_session
from GASACore.openmp_env import apply_openmp_defaults
from GASACore.options import Device, OptionError, SegmentOptions, add_arguments
from GASACore.progress import ProgressMode, make_sink

if TYPE_CHECKING:
    from GASACore.bundle import ModelBundle

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
    return args


def _output_for(case_name: str, args: argparse.Namespace, batch: bool) -> Path:
    if batch or args.output.is_dir():
        return args.output / f"{case_name}{args.format}"
    return args.output


def _refuse_existing_outputs(outputs: Sequence[Path], overwrite: bool) -> None:
    """The one "output exists" check of a run: before any work, for every file the run will write.

    The writers keep ``overwrite=False`` as their last line of defence (``write_label_map`` links its
    temporary file into place, which fails on an existing file), so a file that appears meanwhile is safe.

    Raises:
        GASAError: some outputs exist and ``overwrite`` is off; names up to five of them.
    """
    existing = [str(path) for path in outputs if os.path.lexists(path)]
    if not existing or overwrite:
        return
    if len(existing) == 1:
        raise GASAError(f"output {existing[0]} exists; pass --overwrite to replace it or choose another path")
    shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
    raise GASAError(
        f"{len(existing)} outputs exist ({shown}); pass --overwrite to replace them or choose another output folder"
    )


@dataclass(frozen=True)
class _CaseOutputs:
    """What one segmented case writes: the label map ``path``, and for a single input its extras."""

    path: Path
    result: Any
    image: Any
    volumes: dict[str, float]
    single: bool


def _write_outputs(
    args: argparse.Namespace, model: Any, case: _CaseOutputs, interrupt: Interrupt, existing_before: set[Path]
) -> None:
    """Write one case's label map (and, for a single input, its volumes and overlay) without being cut short.

    A signal that arrives meanwhile is honoured once the files are complete: they are removed again (those
    that existed before the run are the user's only with ``--overwrite``) and the run stops.
    """
    from GASACore.io import write_label_map
    from GASACore.report import write_overlay_png, write_volumes

    result = case.result
    written: list[Path] = []
    interrupt.check()
    with interrupt.deferred():
        written.append(case.path)
        write_label_map(result.labels, result.geometry, case.path, label_info=model.labels, overwrite=args.overwrite)
        if case.single and args.volumes:
            written.append(args.volumes)
            write_volumes(case.volumes, args.volumes)
        if case.single and args.overlay:
            written.append(args.overlay)
            write_overlay_png(case.image.array, result.labels, result.geometry, model.labels, args.overlay)
    if interrupt.event.is_set():
        for path in written:
            if path not in existing_before:
                path.unlink(missing_ok=True)
        interrupt.check()


def _run(args: argparse.Namespace, sink: EventSink, interrupt: Interrupt | None = None) -> int:
    from GASACore.inference import select_device
    from GASACore.io import find_cases, read_image
    from GASACore.pipeline import segment
    from GASACore.report import label_volumes_ml

    options = SegmentOptions.from_args(args)
    cases = find_cases(args.input)
    batch = len(cases) > 1 or (args.input.is_dir() and not cases[0].is_dicom)
    outputs = [_output_for(case.name, args, batch) for case in cases]
    extras = [] if batch else [p for p in (args.overlay, args.volumes) if p is not None]
    _refuse_existing_outputs([*outputs, *extras], args.overwrite)
    if batch:
        args.output.mkdir(parents=True, exist_ok=True)
    model = _load_model(args.model, options, sink)
    device = select_device(options.device)  # once per run, for every case
    logger.info("device: %s (%s)", *device)
    interrupt = interrupt or Interrupt()
    interrupt.total = len(cases)
    existing_before = {path for path in [*outputs, *extras] if os.path.lexists(path)}
    failures = 0
    for index, (case, output) in enumerate(zip(cases, outputs, strict=True)):
        sink.emit(CaseEvent(case.name, index, len(cases)))
        try:
            image = read_image(case.path, series=args.series)
            result = segment(
                image, model, options=options, progress=sink, cancel=interrupt.event, resolved_device=device
            )
            sink(Stage.EXPORT, 0.5)
            volumes = label_volumes_ml(result.labels, result.geometry, model.labels)
            _write_outputs(
                args, model, _CaseOutputs(output, result, image, volumes, not batch), interrupt, existing_before
            )
            interrupt.completed += 1
            sink(Stage.EXPORT, 1.0)
            seconds = round(result.timings["total"], 2)
            backend, why = result.forward.backend or None, result.forward.reason or None
            sink.emit(
                DoneEvent(str(output), case=case.name, device=result.device, seconds=seconds, backend=backend,
                          backend_reason=why)
            )  # fmt: skip
            logger.info("%s -> %s in %.1f s on %s", case.name, output, result.timings["total"], result.device)
            if args.progress != ProgressMode.JSON:
                runs_on = f"{result.device} ({result.device_reason})" + (f", {backend} ({why})" if backend else "")
                print(f"{case.name}: {runs_on}, {result.timings['total']:.1f} s")
                _print_volumes(case.name, output, volumes)
        except Cancelled:
            raise
        except (GASAError, OSError, ValueError) as err:
            failures += 1
            message = f"{case.name}: {err}"
            sink.emit(ErrorEvent(message, case=case.name))
            print(f"gasa-segment: error: {message}", file=sys.stderr)
            if not batch:
                return 1
    if batch:
        print(f"gasa-segment: {len(cases) - failures} of {len(cases)} inputs segmented", file=sys.stderr)
    return 1 if failures else 0


def _load_model(model: str, options: SegmentOptions, sink: EventSink) -> ModelBundle:
    """``-m``: a model path, or a catalogue id (downloaded on first use unless ``--offline``), loaded and verified."""
    from GASACore.models import load_model_spec

    return load_model_spec(model, folds=options.folds.names, offline=options.offline, progress=sink.emit)


def _print_volumes(name: str, output: Path, volumes: dict[str, float]) -> None:
    print(f"{name}: wrote {output}")
    for label, ml in volumes.items():
        print(f"  {label:<28s} {ml:10.1f} ml")


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gasa-segment``; returns the process exit code."""
    apply_openmp_defaults()  # first: OpenMP reads its wait policy once, when torch loads it
    lead_new_session()
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.check_device:
        return _check_device(args)
    if args.describe_model is not None:
        return _describe_model(args)
    sink = make_sink(args.progress)
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
    finally:
        interrupt.restore()
        sink.close()
        if argv is None:  # the command line's own run: the interpreter exits next
            gc.freeze()  # so its last garbage collection skips torch's object graph (seconds at exit)


if __name__ == "__main__":
    sys.exit(main())
