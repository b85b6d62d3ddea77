"""The event contract: emit -> parse round trip of every event, malformed lines, the stage table."""

from __future__ import annotations

import itertools
import json

import pytest

from GASACore.events import (
    STAGE_SPANS,
    CaseEvent,
    DoneEvent,
    DownloadEvent,
    ErrorEvent,
    EventKind,
    EventSink,
    LogEvent,
    ProgressEvent,
    Stage,
    StartEvent,
    overall_fraction,
    parse_event_line,
)

EVENTS = [
    ProgressEvent(Stage.LOAD, 0.0),
    ProgressEvent(Stage.PREDICT, 0.42),
    ProgressEvent(Stage.EXPORT, 1.0, 1.0),
    ProgressEvent(Stage.PREPROCESS, 0.5, 0.3),
    CaseEvent("case_001", 0, 3),
    DownloadEvent("totalseg-organs@2.0.0", 1 << 20, 233_742_255),
    DownloadEvent("site-model@1.0.0", 5000),
    DoneEvent("/tmp/out/seg.nii.gz"),
    DoneEvent("/tmp/out/seg.nii.gz", case="case_001", device="cuda:0", seconds=12.25),
    ErrorEvent("broken.nii.gz: expected a 3D image, got 2D"),
    ErrorEvent("bad input", case="case_002"),
    LogEvent("WARNING GASACore.pipeline: air-window skipping needs a CT-normalised model"),
    LogEvent('ünïcode ✓ and "quotes"'),
    StartEvent(4242, 4242),
    StartEvent(4243),
]


def test_every_event_kind_is_covered() -> None:
    assert {event.kind for event in EVENTS} == set(EventKind)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.to_json_line()[:60])
def test_emit_parse_round_trip(event) -> None:
    line = event.to_json_line()
    assert "\n" not in line and json.loads(line)["event"] == event.kind.value
    assert parse_event_line(line) == event
    assert parse_event_line(f"  {line}\r\n") == event


def test_json_form_matches_the_documented_contract() -> None:
    assert json.loads(ProgressEvent(Stage.PREDICT, 0.42).to_json_line()) == {
        "event": "progress",
        "stage": "predict",
        "fraction": 0.42,
        "overall": pytest.approx(0.465),
    }
    assert json.loads(DoneEvent("/x.nrrd").to_json_line()) == {"event": "done", "output": "/x.nrrd"}
    assert json.loads(ErrorEvent("bad").to_json_line()) == {"event": "error", "message": "bad"}
    assert json.loads(DownloadEvent("m@1.0.0", 250, 1000).to_json_line()) == {
        "event": "download",
        "model": "m@1.0.0",
        "received": 250,
        "total": 1000,
        "fraction": 0.25,
    }


def test_lines_written_by_older_or_newer_engines() -> None:
    event = parse_event_line('{"event": "progress", "stage": "predict", "fraction": 0.42}')
    assert event == ProgressEvent(Stage.PREDICT, 0.42) and event.overall == pytest.approx(0.15 + 0.75 * 0.42)
    assert parse_event_line('{"event": "progress", "stage": "predict", "fraction": 0.5, "overall": 0.3}').overall == 0.3
    assert parse_event_line('{"event": "done", "output": "/x", "gpu_seconds": 3}') == DoneEvent("/x")
    assert parse_event_line('{"event": "progress", "stage": "predict", "fraction": 1}').fraction == 1


@pytest.mark.parametrize(
    "line",
    [
        "Traceback (most recent call last):",
        "{not json",
        "[1, 2]",
        '"progress"',
        "{}",
        '{"event": "party"}',
        '{"event": ["progress"]}',
        '{"event": "progress", "stage": "train", "fraction": 0.5}',
        '{"event": "progress", "stage": "predict", "fraction": "half"}',
        '{"event": "progress", "stage": "predict", "fraction": 1.5}',
        '{"event": "progress", "stage": "predict", "fraction": true}',
        '{"event": "progress", "stage": "predict"}',
        '{"event": "case", "name": "a", "index": "0", "total": 1}',
        '{"event": "done"}',
        '{"event": "error", "message": 42}',
    ],
)
def test_malformed_lines_become_log_events(line: str) -> None:
    assert parse_event_line(line) == LogEvent(line)


def test_blank_lines_are_nothing() -> None:
    assert parse_event_line("") is None and parse_event_line("  \t \n") is None


def test_stage_table_covers_the_run_in_order() -> None:
    assert list(STAGE_SPANS) == list(Stage) == ["load", "preprocess", "predict", "export"]
    spans = list(STAGE_SPANS.values())
    assert spans[0][0] == 0.0 and spans[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans)), "stages must tile [0, 1]"
    assert overall_fraction("load", 0.0) == 0.0 and overall_fraction("export", 1.0) == 1.0
    assert overall_fraction(Stage.PREDICT, 0.5) == pytest.approx(0.525)
    assert overall_fraction("preprocess", 1.0) == overall_fraction("predict", 0.0) == 0.15
    assert overall_fraction("predict", -1) == 0.15 and overall_fraction("predict", 7) == 0.9
    with pytest.raises(ValueError, match="'train' is not a valid Stage"):
        overall_fraction("train", 0.5)


def test_progress_event_checks_its_fraction() -> None:
    with pytest.raises(ValueError, match=r"fraction must be a number in \[0, 1\], got 1.2"):
        ProgressEvent(Stage.PREDICT, 1.2)
    assert ProgressEvent("predict", 0.5).stage is Stage.PREDICT  # type: ignore[arg-type]


def test_event_sink_is_a_progress_sink() -> None:
    received = []

    class Recorder(EventSink):
        def emit(self, event) -> None:
            received.append(event)

    sink = Recorder()
    sink("predict", 0.25)
    sink(Stage.EXPORT, 1.0000001)  # float noise above 1 is clamped, not refused
    assert received == [ProgressEvent(Stage.PREDICT, 0.25), ProgressEvent(Stage.EXPORT, 1.0)]
    EventSink()("load", 0.5)  # the base sink drops everything
