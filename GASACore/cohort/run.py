"""A ``gasa-segment`` run over its cases: one file, a folder (batch) or a cohort sharded over torchrun's ranks.

One code path for all three: the cases of the input are listed and sorted (:func:`~GASACore.io.find_cases`),
each rank takes its :func:`~GASACore.cohort.ranks.shard` (all of them with world size 1), segments them one
after another on its device, writes each label map atomically, records failures and carries on, and rank 0
writes the one summary of a batch (:func:`~GASACore.cohort.summary.write_summary`). ``resume`` skips the
cases whose output is complete (:func:`~GASACore.cohort.summary.output_complete`), so a killed run restarts
where it stopped.

Before any model work every output is checked (:func:`~GASACore.io.outputs.output_problem`: suffix,
writable folder, never an input, no two on one path; :func:`existing_outputs_error`) and locked
(:class:`~GASACore.io.lockfile.OutputLocks`), so a second run writing the same outputs refuses at once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from GASACore.cohort.launcher_watch import die_with_parent, under_torchrun
from GASACore.cohort.ranks import RankGroup, RankInfo, select_rank_device, shard
from GASACore.cohort.summary import (
    SUMMARY_CSV,
    SUMMARY_JSON,
    CaseRecord,
    CaseStatus,
    output_complete,
    summary_counts,
    write_summary,
)
from GASACore.errors import Cancelled, GASAError
from GASACore.events import CaseEvent, DoneEvent, ErrorEvent, EventSink, LogEvent, Stage
from GASACore.interrupt import Interrupt
from GASACore.options import SegmentOptions

if TYPE_CHECKING:
    from GASACore.bundle import ModelBundle
    from GASACore.io import Case

__all__ = ["Echo", "RunRequest", "existing_outputs_error", "output_paths_error", "run_cases"]

logger = logging.getLogger(__name__)

#: Prints one line for the user: ``echo(text)`` on stdout, ``echo(text, error=True)`` on stderr (the CLI's).
Echo = Callable[..., None]


@dataclass(frozen=True)
class RunRequest:
    """What ``gasa-segment`` was asked to do (built by :mod:`GASACore.cli` from its arguments).

    Attributes:
        input: image file, DICOM series folder, or folder of cases.
        output: label map path (single input) or folder (batch).
        model: model path or catalogue id (``-m``).
        options: how the model runs.
        series: SeriesInstanceUID to pick from a DICOM folder.
        suffix: output format of batch outputs (``.nii.gz``, ...).
        overwrite: replace existing outputs.
        resume: skip cases whose output is complete (never replaces anything).
        overlay, volumes: extra outputs of a single input.
        progress_json: events go to stdout as JSON lines, so no per-case text lines there.
    """

    input: Path
    output: Path
    model: str
    options: SegmentOptions
    series: str | None = None
    suffix: str = ".nii.gz"
    overwrite: bool = False
    resume: bool = False
    overlay: Path | None = None
    volumes: Path | None = None
    progress_json: bool = False


@dataclass(frozen=True)
class _Plan:
    cases: list[Case]
    outputs: list[Path]
    extras: list[Path]
    batch: bool


def _plan(request: RunRequest) -> _Plan:
    from GASACore.io import find_cases

    cases = find_cases(request.input)
    batch = len(cases) > 1 or (request.input.is_dir() and not cases[0].is_dicom)
    folder = batch or os.path.isdir(request.output)  # False, not OSError, for a name too long to stat
    outputs = [request.output / f"{c.name}{request.suffix}" if folder else request.output for c in cases]
    extras = [] if batch else [p for p in (request.overlay, request.volumes) if p is not None]
    return _Plan(cases, outputs, extras, batch)


def existing_outputs_error(outputs: Sequence[Path], overwrite: bool) -> str | None:
    """The one "output exists" check of a run: before any work, for every file the run will write.

    The writers keep ``overwrite=False`` as their last line of defence (``write_label_map`` links its
    temporary file into place, which fails on an existing file), so a file that appears meanwhile is safe.

    Returns:
        ``None`` when the run may go ahead; else the message (names up to five existing outputs).
    """
    existing = [str(path) for path in outputs if os.path.lexists(path)]
    if not existing or overwrite:
        return None
    if len(existing) == 1:
        return (
            f"output {existing[0]} exists; pass --overwrite to replace it, --resume to skip it, or choose another path"
        )
    shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
    return (
        f"{len(existing)} outputs exist ({shown}); pass --overwrite to replace them, --resume to skip their cases, "
        "or choose another output folder"
    )


def _planned_outputs(request: RunRequest, plan: _Plan) -> list[Any]:
    from GASACore.io.outputs import OVERLAY_SUFFIXES, VOLUMES_SUFFIXES, PlannedOutput

    planned = [
        PlannedOutput(output, f"case {case.name}") for case, output in zip(plan.cases, plan.outputs, strict=True)
    ]
    if not plan.batch:
        planned[0] = PlannedOutput(plan.outputs[0], "-o/--output")
        if request.overlay is not None:
            planned.append(PlannedOutput(request.overlay, "--overlay", OVERLAY_SUFFIXES))
        if request.volumes is not None:
            planned.append(PlannedOutput(request.volumes, "--volumes", VOLUMES_SUFFIXES))
    return planned


def _protected(request: RunRequest, plan: _Plan) -> list[Any]:
    """The user's paths no output may be or lie in: every input (a DICOM folder as a whole) and a local model."""
    from GASACore.io.headers import data_files_of
    from GASACore.io.outputs import Protected

    protected = [Protected(c.path, "the input DICOM folder" if c.is_dicom else "the input") for c in plan.cases]
    for case in plan.cases:  # the voxel data files a .mhd / .nhdr header (or a NIfTI pair's .hdr) names
        if not case.is_dicom:
            named = f"the voxel data file named by the input {case.path.name},"
            protected += [Protected(data, named) for data in data_files_of(case.path)]
    model = Path(str(request.model)).expanduser()
    if model.exists():
        protected.append(Protected(model, "the model folder" if model.is_dir() else "the model file"))
    return protected


def output_paths_error(request: RunRequest, plan: _Plan) -> str | None:
    """Every check of the outputs before the work: paths and folders, then outputs that exist."""
    from GASACore.io.outputs import output_problem

    problem = output_problem(_planned_outputs(request, plan), _protected(request, plan))
    if problem:
        return problem
    watched = [*(() if request.resume else plan.outputs), *plan.extras]
    return existing_outputs_error(watched, request.overwrite)


def _locked_outputs(request: RunRequest, plan: _Plan, info: RankInfo, indices: Sequence[int]) -> list[Path]:
    """What this rank writes: its shard's label maps, a single input's extras, rank 0 a batch's summary."""
    mine = [plan.outputs[i] for i in indices] + list(plan.extras)
    if plan.batch and info.rank == 0:
        mine += [request.output / SUMMARY_JSON, request.output / SUMMARY_CSV]
    return mine


def _agree(group: RankGroup, problem: str | None) -> None:
    """Every rank stops when any rank found a problem before the work (a barrier: no rank writes before it)."""
    problems = [p for p in group.all_gather(problem) if p]
    if problems:
        raise GASAError(problems[0])


@dataclass
class _Context:
    request: RunRequest
    plan: _Plan
    info: RankInfo
    sink: EventSink
    interrupt: Interrupt
    echo: Echo
    model: Any = None
    device: Any = None
    existing_before: frozenset[Path] = frozenset()


def _write_outputs(ctx: _Context, output: Path, result: Any, image: Any, volumes: dict[str, float]) -> None:
    """Write one case's label map (and, for a single input, its volumes and overlay) without being cut short.

    A signal that arrives meanwhile is honoured once the files are complete: they are removed again (those
    that existed before the run are the user's only with ``--overwrite``) and the run stops.
    """
    from GASACore.io import write_label_map
    from GASACore.report import write_overlay_png, write_volumes

    request, single = ctx.request, not ctx.plan.batch
    written: list[Path] = []
    ctx.interrupt.check()
    with ctx.interrupt.deferred():
        written.append(output)
        labels = ctx.model.labels
        write_label_map(
            result.labels,
            result.geometry,
            output,
            label_info=labels,
            overwrite=request.overwrite,
            unplaced=image.unplaced,
        )
        if single and request.volumes:
            written.append(request.volumes)
            write_volumes(volumes, request.volumes)
        if single and request.overlay:
            written.append(request.overlay)
            write_overlay_png(image.array, result.labels, result.geometry, labels, request.overlay)
    if ctx.interrupt.event.is_set():
        for path in written:
            if path not in ctx.existing_before:
                path.unlink(missing_ok=True)
        ctx.interrupt.check()


def _segment_case(ctx: _Context, case: Case, output: Path) -> CaseRecord:
    """Read, segment and write one case; returns its record (raises on failure)."""
    from GASACore.io import read_image
    from GASACore.pipeline import segment
    from GASACore.report import label_volumes_ml

    start = time.perf_counter()
    image = read_image(case.path, series=ctx.request.series)
    result = segment(
        image,
        ctx.model,
        options=ctx.request.options,
        progress=ctx.sink,
        cancel=ctx.interrupt.event,
        resolved_device=ctx.device,
    )
    ctx.sink(Stage.EXPORT, 0.5)
    volumes = label_volumes_ml(result.labels, result.geometry, ctx.model.labels)
    _write_outputs(ctx, output, result, image, volumes)
    ctx.interrupt.completed += 1
    ctx.sink(Stage.EXPORT, 1.0)
    seconds = round(time.perf_counter() - start, 2)
    backend, why = result.forward.backend or None, result.forward.reason or None
    ctx.sink.emit(
        DoneEvent(str(output), case=case.name, device=result.device, seconds=seconds, backend=backend,
                  backend_reason=why)
    )  # fmt: skip
    logger.info("%s -> %s in %.1f s on %s", case.name, output, seconds, result.device)
    if not ctx.request.progress_json:
        runs_on = f"{result.device} ({result.device_reason})" + (f", {backend} ({why})" if backend else "")
        ctx.echo(f"{_prefix(ctx)}{case.name}: {runs_on}, {seconds:.1f} s")
        ctx.echo(f"{case.name}: wrote {output}")
        for label, ml in volumes.items():
            ctx.echo(f"  {label:<28s} {ml:10.1f} ml")
    return CaseRecord(case.name, CaseStatus.SEGMENTED, seconds, result.device, ctx.info.rank, str(output))


def _prefix(ctx: _Context) -> str:
    return f"[{ctx.info.label}] " if ctx.info.distributed else ""


def _skip(ctx: _Context, case: Case, output: Path) -> CaseRecord | None:
    """``resume``: the record of a case whose output is complete, a failure for a foreign file, else ``None``."""
    if not ctx.request.resume:
        return None
    from GASACore.io.atomic import stale_temporaries

    for leftover in stale_temporaries(output):  # a killed writer's; this rank alone writes this output
        logger.info("removing %s, left by an interrupted run", leftover)
        leftover.unlink(missing_ok=True)
    device = str(ctx.device.device)
    if output_complete(output):
        message = f"{case.name}: skipped, {output} is complete (--resume)"
        logger.info(message)
        ctx.sink.emit(LogEvent(message))
        return CaseRecord(case.name, CaseStatus.SKIPPED, 0.0, device, ctx.info.rank, str(output))
    if os.path.lexists(output):
        error = f"output {output} exists but is not a readable label map; remove it or pass --overwrite"
        return CaseRecord(case.name, CaseStatus.FAILED, 0.0, device, ctx.info.rank, str(output), error)
    return None


def _run_case(ctx: _Context, index: int) -> CaseRecord:
    """One case of this rank's shard; a failure is recorded and reported (in a batch, any exception)."""
    case, output = ctx.plan.cases[index], ctx.plan.outputs[index]
    ctx.sink.emit(CaseEvent(case.name, index, len(ctx.plan.cases)))
    start = time.perf_counter()
    try:
        record = _skip(ctx, case, output) or _segment_case(ctx, case, output)
        if record.status is not CaseStatus.FAILED:
            return replace(record, index=index)
        error = record.error
    except Cancelled:
        raise
    except (GASAError, OSError, ValueError) as err:
        error = str(err)
    except Exception as err:  # a batch keeps going past any failed case; a single input lets it surface
        if not ctx.plan.batch:
            raise
        from GASACore.cohort.crash import crash_line

        error = crash_line(err, f"case {case.name} ({case.path})")
    message = f"{case.name}: {error}"
    ctx.sink.emit(ErrorEvent(message, case=case.name))
    ctx.echo(f"gasa-segment: error: {_prefix(ctx)}{message}", error=True)
    seconds = round(time.perf_counter() - start, 2)
    return CaseRecord(case.name, CaseStatus.FAILED, seconds, str(ctx.device.device), ctx.info.rank, str(output),
                      error, index)  # fmt: skip


def _finish(ctx: _Context, group: RankGroup, mine: list[CaseRecord]) -> int:
    """Gather every rank's records; rank 0 writes the batch summary and the closing line. Returns the exit code."""
    records = [record for part in group.all_gather(mine) for record in part]
    counts = summary_counts(records)
    if ctx.plan.batch and ctx.info.rank == 0:
        run = {
            "input": str(ctx.request.input),
            "output": str(ctx.request.output),
            "model": str(ctx.request.model),
            "world_size": ctx.info.world_size,
            "resume": ctx.request.resume,
        }
        write_summary(ctx.request.output, records, run)
        total = len(ctx.plan.cases)
        done = counts[CaseStatus.SEGMENTED] + counts[CaseStatus.SKIPPED]
        line = f"gasa-segment: {done} of {total} inputs segmented"
        if counts[CaseStatus.SKIPPED]:
            line += f" ({counts[CaseStatus.SKIPPED]} skipped: complete outputs, --resume)"
        if ctx.info.distributed:
            line += f" on {ctx.info.world_size} ranks"
        ctx.echo(f"{line}; summary in {ctx.request.output}", error=True)
    return 1 if counts[CaseStatus.FAILED] else 0


def _load_model(request: RunRequest, sink: EventSink) -> ModelBundle:
    """``-m``: a model path, or a catalogue id (downloaded on first use unless ``--offline``), loaded and verified."""
    from GASACore.models import load_model_spec

    options = request.options
    return load_model_spec(request.model, folds=options.folds.names, offline=options.offline, progress=sink.emit)


def run_cases(
    request: RunRequest,
    sink: EventSink,
    echo: Echo,
    interrupt: Interrupt | None = None,
    info: RankInfo | None = None,
) -> int:
    """Segment every case of ``request`` that falls to this rank; the exit code of the whole run.

    Args:
        request: inputs, outputs, model and options.
        sink: progress and event reporter.
        echo: prints a line for the user (see :data:`Echo`).
        interrupt: SIGTERM / SIGINT handling (a fresh one when ``None``).
        info: this rank (``None``: from torchrun's environment, a single process without it).

    Returns:
        0 when every case of every rank was segmented or skipped as complete, else 1.

    Raises:
        GASAError: no usable input, outputs that exist (without ``overwrite`` / ``resume``) or a bad model
            (a case that fails is reported and counted, not raised). Cancelled: a signal stopped the run.
    """
    from GASACore.io.lockfile import OutputLocks
    from GASACore.io.outputs import make_output_folders

    info = info or RankInfo.from_environ()
    if under_torchrun():
        die_with_parent()  # torchrun's workers lead their own sessions: stop them with the agent
    with RankGroup(info) as group:
        plan = _plan(request)
        _agree(group, output_paths_error(request, plan))
        indices = shard(range(len(plan.cases)), info.rank, info.world_size)
        locked = _locked_outputs(request, plan, info, indices)
        locks = OutputLocks(locked)
        try:
            try:
                make_output_folders([*plan.outputs, *plan.extras])
                locks.acquire()
            except GASAError as err:
                problem: str | None = str(err)
            else:
                problem = None
            _agree(group, problem)  # no rank starts while another cannot write
            ctx = _Context(request, plan, info, sink, interrupt or Interrupt(), echo)
            ctx.model = _load_model(request, sink)
            ctx.device = select_rank_device(request.options.device, info)  # once per run, for every case
            logger.info("%sdevice: %s (%s)", _prefix(ctx), *ctx.device)
            ctx.existing_before = frozenset(p for p in [*plan.outputs, *plan.extras] if os.path.lexists(p))
            ctx.interrupt.total = len(indices)
            mine = [_run_case(ctx, index) for index in indices]
            return _finish(ctx, group, mine)
        finally:
            locks.release()
