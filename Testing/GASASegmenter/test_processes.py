"""Runners, output decoding with PythonQt's types, engine queries, and stopping process trees without waiting."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import pythonQt
from GASASegmenterLib.backgroundProcess import BackgroundProcess
from GASASegmenterLib.catalog import labelsFromDescription, modelLabels
from GASASegmenterLib.engineQuery import EngineQuery
from GASASegmenterLib.logic import SegmenterLogic
from GASASegmenterLib.processRunner import LineDecoder, SubprocessRunner, bytesOf
from GASASegmenterLib.processTree import TreeStopper, descendants, isProcessAlive, processTable
from GASASegmenterLib.qtProcessRunner import QProcessRunner

from GASACore.events import NEW_SESSION_ENV, ProgressEvent, Stage, parse_event_line
from GASACore.labels import LABEL_SETS

TEXT = "Leber ✓ 1,2 µl, Niere ø\n日本語の行\nend without newline"


def _runners() -> list:
    return [pytest.param(lambda: QProcessRunner(qtModule=pythonQt), id="qprocess"), pytest.param(SubprocessRunner)]


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "engine.py"
    path.write_text(body, encoding="utf-8")
    return [sys.executable, str(path)]


def _drain(runner, timeout: float = 30.0) -> tuple[list[str], list[str], int]:
    out: list[str] = []
    err: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        code = runner.exitCode()
        out += runner.readLines()
        err += runner.readErrorLines()
        if code is not None:
            return out, err, code
        assert time.monotonic() < deadline, "the process did not end"
        time.sleep(0.01)


def test_pythonqt_bytearray_is_read_through_data_only() -> None:
    array = pythonQt.QByteArray("ø".encode())
    with pytest.raises(TypeError):
        bytes(array)  # no buffer protocol: what the module's first runner did every 200 ms
    assert bytesOf(array) == b"\xc3\xb8" and bytesOf(b"x") == b"x"


def test_line_decoder_keeps_characters_split_across_reads() -> None:
    data = TEXT.encode("utf-8") + b"\r\n"
    decoder = LineDecoder()
    lines = [line for i in range(len(data)) for line in decoder.feed(data[i : i + 1])]
    assert lines == TEXT.split("\n") and decoder.finish() == []
    decoder = LineDecoder()
    assert decoder.feed(b"ab\xe2\x9c") == [] and decoder.finish() == ["ab\ufffd"]  # a cut-off character


@pytest.mark.parametrize("makeRunner", _runners())
def test_runner_decodes_utf8_split_between_reads(tmp_path: Path, makeRunner) -> None:
    body = (
        "import sys\n"
        f"sys.stdout.buffer.write({TEXT.encode('utf-8')!r})\n"
        "sys.stderr.buffer.write('Fehler: ü\\n'.encode())\n"
        "sys.exit(3)\n"
    )
    runner = makeRunner()
    runner.start(_script(tmp_path, body))
    out, err, code = _drain(runner)
    assert out == TEXT.split("\n") and err == ["Fehler: ü"] and code == 3


@pytest.mark.parametrize("makeRunner", _runners())
def test_engine_query_reads_the_last_json_object(tmp_path: Path, makeRunner) -> None:
    command = _script(tmp_path, 'print("starting")\nprint(\'{"cuda_usable": false, "reason": "no GPU ✓"}\')\n')
    query = EngineQuery(makeRunner(), command)
    assert query.wait() == {"cuda_usable": False, "reason": "no GPU ✓"} and query.error == ""


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("import sys\nsys.stderr.write('boom\\n')\nsys.exit(3)\n", "engine exit code 3: boom"),
        ("print('not json')\n", "the engine printed no JSON object (last line: 'not json')"),
        ("import time\ntime.sleep(30)\n", "the engine did not answer within 0.5 s"),
    ],
)
def test_engine_query_failures_say_why(tmp_path: Path, body: str, error: str) -> None:
    timeout = 0.5 if "sleep" in body else 60
    query = EngineQuery(QProcessRunner(qtModule=pythonQt), _script(tmp_path, body), timeout=timeout)
    pid = None
    while not query.poll():
        pid = pid or query.runner.pid
        time.sleep(0.01)
    assert query.result is None and query.error == error
    assert pid is None or not isProcessAlive(pid)


@pytest.mark.parametrize("makeRunner", _runners())
def test_engine_query_abandoned_when_the_module_closes_is_killed_at_once(tmp_path: Path, makeRunner) -> None:
    query = EngineQuery(makeRunner(), _script(tmp_path, "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"))
    deadline = time.monotonic() + 30
    while not query.runner.pid and time.monotonic() < deadline:
        query.poll()
        time.sleep(0.01)
    pid = query.runner.pid
    started = time.monotonic()
    query.abandon()
    assert time.monotonic() - started < 1.0  # never waits
    assert query.finished and query.result is None and query.error == "stopped: the module was closed"
    while isProcessAlive(pid) and time.monotonic() - started < 2.0:
        time.sleep(0.02)
    assert not isProcessAlive(pid)


@pytest.mark.parametrize("makeRunner", _runners())
def test_engine_that_cannot_start_is_reported_not_raised(makeRunner) -> None:
    query = EngineQuery(makeRunner(), ["/nonexistent/PythonSlicer", "--check-device"])
    started = time.monotonic()
    assert query.wait() is None and time.monotonic() - started < 5
    assert query.error.startswith("could not start the engine (/nonexistent/PythonSlicer): ")


def test_check_gpu_asks_the_engine() -> None:
    report = SegmenterLogic().checkDevice("auto")
    assert report["device"] == "cpu" and report["cuda_usable"] is False
    assert report["reason"].startswith("CUDA not usable (") and report["reason"].endswith("; using the CPU")
    assert report["torch"] and "arch_list" in report


def test_descendants_walk_the_table() -> None:
    table = {10: (1, 10), 11: (10, 10), 12: (11, 12), 13: (1, 13), 14: (12, 12)}
    assert descendants([10], table) == {11, 12, 14} and descendants([13], table) == set()
    assert os.getpid() in processTable()


_TREE = (
    "import os, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); time.sleep(60)'])\n"
    "grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "open(sys.argv[1], 'w').write(f'{child.pid} {grandchild.pid}')\n"
    'print(\'{"event": "progress", "stage": "load", "fraction": 0.5}\', flush=True)\n'
    "time.sleep(60)\n"
)


@pytest.mark.parametrize("makeRunner", _runners())
def test_stopping_reaches_children_in_other_sessions_without_blocking(tmp_path: Path, makeRunner) -> None:
    pidFile = tmp_path / "pids"
    process = BackgroundProcess(makeRunner(), [*_script(tmp_path, _TREE), str(pidFile)])
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not lines and time.monotonic() < deadline:
        lines = process.readLines()
        time.sleep(0.02)
    assert lines and parse_event_line(lines[0]) == ProgressEvent(Stage.LOAD, 0.5)
    children = [int(pid) for pid in pidFile.read_text().split()]
    tree = [process.runner.pid, *children]
    assert all(isProcessAlive(pid) for pid in tree) and process.exitCode() is None
    started = time.monotonic()
    process.stop()
    assert time.monotonic() - started < 0.5, "stop() must return at once"
    while not process.stopped():
        time.sleep(0.02)
    assert time.monotonic() - started < 2.0
    assert not [pid for pid in tree if isProcessAlive(pid)]


def test_the_callers_own_group_is_never_signalled() -> None:
    stopper = TreeStopper(None, groups=[os.getpgrp()])
    stopper.begin()
    assert stopper.poll() is True  # nothing to stop, and this test process is still here


def test_the_engine_is_told_to_lead_its_session(tmp_path: Path) -> None:
    body = f"import os\nprint(os.environ.get({NEW_SESSION_ENV!r}))\n"
    process = BackgroundProcess(SubprocessRunner(), _script(tmp_path, body))
    while process.exitCode() is None:
        time.sleep(0.01)
    assert process.readLines() == ["1"]


def test_the_panel_reads_a_models_labels_from_the_engine(tiny_bundle: Path) -> None:
    query = SegmenterLogic().startModelDescription(tiny_bundle, runner=QProcessRunner(qtModule=pythonQt))
    description = query.wait()
    assert description is not None, query.error
    assert labelsFromDescription(description) == LABEL_SETS["btcv"] == modelLabels(tiny_bundle)
    assert description["labels"][0]["terminology_entry"].startswith(
        "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure~"
    )
