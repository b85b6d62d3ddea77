"""The CLI's event sinks: JSON lines that parse back, rounding and de-duplication, the mode switch."""

from __future__ import annotations

import io

import pytest

from GASACore.events import CaseEvent, DoneEvent, ErrorEvent, EventSink, ProgressEvent, Stage, parse_event_line
from GASACore.progress import BarSink, JsonLinesSink, ProgressMode, make_sink


def test_json_lines_sink_writes_parseable_rounded_lines() -> None:
    stream = io.StringIO()
    sink = JsonLinesSink(stream)
    sink.emit(CaseEvent("a", 0, 1))
    sink(Stage.PREDICT, 0.123456)
    sink(Stage.PREDICT, 0.12349)  # same after rounding to 0.001: not written again
    sink(Stage.PREDICT, 0.5)
    sink.emit(DoneEvent("/out/a.nii.gz", case="a", device="cpu", seconds=1.5))
    sink.emit(ErrorEvent("b: bad", case="b"))
    events = [parse_event_line(line) for line in stream.getvalue().splitlines()]
    assert events == [
        CaseEvent("a", 0, 1),
        ProgressEvent(Stage.PREDICT, 0.123, 0.243),
        ProgressEvent(Stage.PREDICT, 0.5, 0.525),
        DoneEvent("/out/a.nii.gz", case="a", device="cpu", seconds=1.5),
        ErrorEvent("b: bad", case="b"),
    ]


def test_make_sink_modes() -> None:
    assert isinstance(make_sink("json"), JsonLinesSink)
    assert isinstance(make_sink(ProgressMode.BAR), BarSink)
    assert type(make_sink("none")) is EventSink
    assert type(make_sink("auto")) is EventSink  # stderr is not a terminal under pytest
    with pytest.raises(ValueError, match="'loud' is not a valid ProgressMode"):
        make_sink("loud")


def test_bar_sink_follows_the_overall_fraction(capsys: pytest.CaptureFixture[str]) -> None:
    sink = BarSink()
    sink.emit(CaseEvent("case", 0, 2))
    sink(Stage.PREDICT, 0.5)
    sink.emit(DoneEvent("/out/case.nii.gz"))
    sink.close()
    states = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any(s.startswith("[1/2] case:  52%") and "52.5/100" in s and "predict" in s for s in states), states
    assert "100/100" in states[-1]
