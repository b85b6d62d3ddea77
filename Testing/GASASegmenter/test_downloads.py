"""Catalogue models in the module: listed, downloaded in the engine's Python, cancelled, refused, imported, used.

Real slicer-core MRML, the real ``gasa-models`` / ``gasa-segment`` processes and a loopback HTTP server
(127.0.0.1, started by the test) serving a zip in TotalSegmentator's layout of a small nnU-Net v2 model
trained on the real sample CT: the server and archive builders are the catalogue tests' own
(``Testing/GASACore/models``), as is the trained-model fixture (``Testing/GASACore/engine/nnunet_fixture.py``).
"""

from __future__ import annotations

import io
import random
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import pythonQt
from GASASegmenterLib.catalog import ModelEntry
from GASASegmenterLib.job import JobState
from GASASegmenterLib.logic import SegmenterLogic, SegmentOptions
from GASASegmenterLib.processRunner import SubprocessRunner
from GASASegmenterLib.processTree import isProcessAlive
from GASASegmenterLib.qtProcessRunner import QProcessRunner
from sceneHelpers import sceneSnapshot

from GASACore.labels import LABEL_SETS, terminology_entry
from GASACore.models.install import part_path

_TESTING = Path(__file__).resolve().parents[1]
for _folder in (_TESTING / "GASACore" / "models", _TESTING / "GASACore" / "engine"):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))  # appended: never shadows a module of this folder

from catalog_support import (  # noqa: E402 - the catalogue tests' builders, reused
    MODEL_FOLDER,
    PROXY_VARIABLES,
    as_published,
    remote_entry,
    sha256,
    write_catalog,
    zip_folder,
)
from model_server import ModelServer  # noqa: E402
from nnunet_fixture import (  # noqa: E402
    intensity_properties,
    load_training_case,
    train_test_weights,
    write_nnunet_results_folder,
)

FAST = SegmentOptions(device="cpu", tta=False, fast=True)
LAUNCHER = Path(__file__).with_name("fakeLauncher.py")
#: Our names and SNOMED CT codes for the test model's classes (its dataset.json says liver, spleen, kidney).
CATALOG_LABELS = [
    {"value": 1, "name": "liver", "maps_to": {"label_set": "btcv", "value": 6}},
    {"value": 2, "name": "spleen", "maps_to": {"label_set": "btcv", "value": 1}},
    {"value": 3, "name": "kidney", "maps_to": {"label_set": "kits23", "value": 1}},
]
EXPECTED_LABELS = [LABEL_SETS["btcv"][5], LABEL_SETS["btcv"][0], LABEL_SETS["kits23"][0]]


@pytest.fixture(scope="module")
def modelZip(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> bytes:
    """The release zip of a small nnU-Net v2 model trained on the sample CT, as TotalSegmentator publishes."""
    ct, target = load_training_case(
        shared_data / "totalsegmentator" / "example_ct.nii.gz",
        shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz",
    )
    weights, props = train_test_weights(ct, target), intensity_properties(ct, target)
    published = as_published(write_nnunet_results_folder(tmp_path_factory.mktemp("published"), weights, props))
    return zip_folder(published, published.parents[1])


@pytest.fixture(scope="module")
def largeZip(modelZip: bytes) -> bytes:
    """:func:`modelZip` with 3 MB of training log beside the model: more than one read (1 MB) of a download."""
    buffer = io.BytesIO(modelZip)
    with zipfile.ZipFile(buffer, "a") as archive:
        log = random.Random(0).randbytes(3 << 20)
        archive.writestr(f"{MODEL_FOLDER}/fold_0/training_log.txt", log, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh GASA_HOME, no proxies (the engine processes inherit the environment)."""
    folder = tmp_path / "gasa_home"
    monkeypatch.setenv("GASA_HOME", str(folder))
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture()
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


def _catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *entries: dict) -> None:
    monkeypatch.setenv("GASA_CATALOG", str(write_catalog(tmp_path / "site-catalog.json", *entries)))


def _entry(logic: SegmenterLogic, modelId: str) -> ModelEntry:
    return next(entry for entry in logic.listModels() if entry.id == modelId)


def _pollUntil(job, condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting; state {job.state}, stage {job.stage}: {job.message}"
        job.poll()
        time.sleep(0.02)


def test_a_remote_model_is_listed_downloaded_and_used_in_one_run(
    tmp_path: Path, monkeypatch, home: Path, server: ModelServer, modelZip: bytes, scene, ct_volume
) -> None:
    server.files["/tiny.zip"] = modelZip
    entry = remote_entry("tiny-organs", server.url("/tiny.zip"), modelZip, labels=CATALOG_LABELS, pinned=False)
    _catalog(tmp_path, monkeypatch, entry)
    logic = SegmenterLogic(scene)
    listed = _entry(logic, "tiny-organs")
    megabytes = round(len(modelZip) / 1e6)
    assert (listed.state, listed.available, listed.downloadable, listed.path) == ("not installed", False, True, None)
    assert listed.title == f"test model tiny-organs (download - {megabytes:,} MB - Apache-2.0 (unpinned))"

    progress: list[tuple[str, float]] = []
    run = logic.startRun(ct_volume, listed, FAST, onProgress=lambda stage, f: progress.append((stage, f)))
    assert run.stage == "download" and run.download is not None and isinstance(run.download.runner, SubprocessRunner)
    assert logic.waitFor(run, timeout=600) == JobState.SUCCEEDED, run.message
    downloads = [f for stage, f in progress if stage == "download"]
    assert downloads and downloads[-1] == 1.0 and downloads == sorted(downloads)
    assert progress.index(("download", 1.0)) < next(i for i, (stage, _) in enumerate(progress) if stage == "load")
    assert run.download.received == run.download.total == len(modelZip)
    assert run.download.progressText == f"download: {len(modelZip) / 1e6:.1f} of {len(modelZip) / 1e6:.1f} MB (100%)"
    assert run.reading is not None and run.reading.result["installed"] is True  # labels read after the download

    segmentation = run.segmentationNode.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    assert names == [label.name for label in EXPECTED_LABELS]
    terms = [segmentation.GetNthSegment(i).GetTerminology() for i in range(segmentation.GetNumberOfSegments())]
    assert terms == [terminology_entry(label) for label in EXPECTED_LABELS]
    liver = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("liver"))
    assert liver.GetRepresentation("Binary labelmap").GetScalarRange()[1] > 0, "the trained model finds the liver"

    installed = _entry(logic, "tiny-organs")
    assert installed.state == "installed" and installed.title == "test model tiny-organs"
    assert installed.path == home / "models" / "tiny-organs" / "1.0.0" / MODEL_FOLDER
    assert not part_path("tiny-organs", "1.0.0").exists()
    requests = len(server.requests)
    again = logic.startRun(ct_volume, installed, FAST)  # installed now: it is read and used, never downloaded
    assert again.download is None and again.stage == "read"
    _pollUntil(again, lambda: again.segmentation is not None, timeout=120)
    again.cancel()
    assert logic.waitFor(again, timeout=30) == JobState.CANCELLED and len(server.requests) == requests


def _runners() -> list:
    launcher = [sys.executable, str(LAUNCHER), "spawn", sys.executable, "-m", "GASACore.cli"]
    return [
        pytest.param(lambda: QProcessRunner(qtModule=pythonQt), launcher, id="qprocess-behind-launcher"),
        pytest.param(SubprocessRunner, None, id="subprocess"),
    ]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the process table is read from /proc (Linux)")
@pytest.mark.parametrize(("makeRunner", "engine"), _runners())
def test_cancel_mid_download_leaves_no_process_and_a_part_that_resumes(
    tmp_path: Path, monkeypatch, home: Path, server: ModelServer, largeZip: bytes, makeRunner, engine
) -> None:
    server.files["/slow.zip"] = largeZip
    server.switches.stall_after, server.switches.stall_seconds = 3 << 19, 20.0  # the server stalls after 1.5 MB
    _catalog(tmp_path, monkeypatch, remote_entry("tiny-slow", server.url("/slow.zip"), largeZip))
    logic = SegmenterLogic(engine=engine)
    download = logic.startDownload(_entry(logic, "tiny-slow"), makeRunner())
    _pollUntil(download, lambda: download.received > 0 and download.process.enginePid is not None, timeout=120)
    pids = [download.runner.pid, download.process.enginePid]
    started = time.monotonic()
    download.cancel()
    _pollUntil(download, lambda: download.finished, timeout=10)
    assert time.monotonic() - started < 3.0 and download.state == JobState.CANCELLED
    assert "kept" in download.message and [pid for pid in pids if isProcessAlive(pid)] == []
    part = part_path("tiny-slow", "1.0.0")
    kept = part.stat().st_size
    assert 0 < kept < len(largeZip), f"the partial download holds {kept} of {len(largeZip)} bytes"
    assert _entry(logic, "tiny-slow").state == "not installed"

    server.switches.stall_after = None
    resumed = logic.startDownload(_entry(logic, "tiny-slow"), makeRunner())
    _pollUntil(resumed, lambda: resumed.finished, timeout=120)
    assert resumed.state == JobState.SUCCEEDED, resumed.message
    assert server.requests[-1].range == f"bytes={kept}-" and server.requests[-1].status == 206
    assert resumed.received == len(largeZip) and not part.exists()
    assert _entry(logic, "tiny-slow").state == "installed"


def test_cancel_during_the_download_of_a_run_stops_it_before_anything_is_segmented(
    tmp_path: Path, monkeypatch, home: Path, server: ModelServer, largeZip: bytes, scene, ct_volume
) -> None:
    """Segment on a model that is not here is one job: Cancel in its download step ends the whole run."""
    server.files["/slow.zip"] = largeZip
    server.switches.stall_after, server.switches.stall_seconds = 1 << 20, 20.0
    _catalog(tmp_path, monkeypatch, remote_entry("tiny-run", server.url("/slow.zip"), largeZip))
    logic = SegmenterLogic(scene)
    before = sceneSnapshot(scene)
    run = logic.startRun(ct_volume, _entry(logic, "tiny-run"), FAST)
    _pollUntil(run, lambda: run.download.received > 0 and run.process.enginePid is not None, timeout=120)
    assert run.stage == "download" and run.progressText.startswith("download: ")
    pids = [run.runner.pid, run.process.enginePid]
    run.cancel()
    _pollUntil(run, lambda: run.finished, timeout=10)
    assert run.state == JobState.CANCELLED
    assert "the next download resumes it" in run.message and [pid for pid in pids if isProcessAlive(pid)] == []
    assert run.reading is None and run.segmentation is None and run.segmentationNode is None
    assert sceneSnapshot(scene) == before and 0 < part_path("tiny-run", "1.0.0").stat().st_size < len(largeZip)


def test_a_tampered_download_is_refused_with_a_clear_message_and_no_model(
    tmp_path: Path, monkeypatch, home: Path, server: ModelServer, modelZip: bytes, scene, ct_volume
) -> None:
    server.files["/tiny.zip"] = modelZip
    _catalog(tmp_path, monkeypatch, remote_entry("tiny-tampered", server.url("/tiny.zip"), modelZip, sha256="0" * 64))
    logic = SegmenterLogic(scene)
    before = sceneSnapshot(scene)
    run = logic.startRun(ct_volume, _entry(logic, "tiny-tampered"), FAST)
    assert logic.waitFor(run, timeout=120) == JobState.FAILED
    assert run.message.startswith("the download of tiny-tampered@1.0.0 failed: refusing tiny-tampered@1.0.0: ")
    assert f"SHA-256 checksum is {sha256(modelZip)}, the catalogue expects {'0' * 64}" in run.message
    assert run.reading is None and run.segmentation is None and sceneSnapshot(scene) == before
    assert _entry(logic, "tiny-tampered").state == "not installed"
    assert sorted(p.name for p in (home / "models" / "tiny-tampered").glob("*")) == []


def test_offline_never_downloads_and_says_what_to_do(
    tmp_path: Path, monkeypatch, home: Path, server: ModelServer, modelZip: bytes, scene, ct_volume
) -> None:
    server.files["/tiny.zip"] = modelZip
    _catalog(tmp_path, monkeypatch, remote_entry("tiny-never", server.url("/tiny.zip"), modelZip))
    logic = SegmenterLogic(scene)
    with pytest.raises(ValueError, match="is not installed and Offline is ticked: untick it to download the model"):
        logic.startRun(ct_volume, _entry(logic, "tiny-never"), SegmentOptions(device="cpu", offline=True))
    assert server.requests == [] and not (home / "models").exists()


def test_an_archive_copied_in_by_hand_is_imported_offline(
    tmp_path: Path, monkeypatch, home: Path, server: ModelServer, modelZip: bytes
) -> None:
    """A zip the catalogue knows (by its SHA-256) is checked and installed as that entry; an unknown one under
    an id made from its file name; neither opens a connection."""
    _catalog(tmp_path, monkeypatch, remote_entry("tiny-organs", server.url("/absent.zip"), modelZip))
    known, unknown = tmp_path / "copied from a USB stick.zip", tmp_path / "My Liver Model.zip"
    known.write_bytes(modelZip)
    unknown.write_bytes(_withComment(modelZip))  # another archive (another SHA-256), the same members
    logic = SegmenterLogic()
    imported = logic.startImport(known, QProcessRunner(qtModule=pythonQt))
    assert imported.wait() is not None, imported.error
    assert (imported.result["id"], imported.result["version"], imported.result["archive_sha256"]) == (
        "tiny-organs", "1.0.0", sha256(modelZip)
    )  # fmt: skip
    assert _entry(logic, "tiny-organs").state == "installed" and server.requests == []

    query = logic.startImport(unknown)
    assert query.wait() is not None, query.error
    own = next(entry for entry in logic.listModels() if entry.key == "my-liver-model@0.0.0")
    assert own.state == "imported" and own.available and own.title == "my-liver-model 0.0.0 (imported)"
    assert own.model == str(own.path) and (own.path / "plans.json").is_file()

    again = logic.startImport(known)
    assert again.wait() is None and "exists already" in again.error


def _withComment(data: bytes) -> bytes:
    """The same zip with an archive comment: a different SHA-256, the same members."""
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = b"brought by hand"
    return buffer.getvalue()


def test_gasa_models_is_started_like_the_engine() -> None:
    launcher = [sys.executable, str(LAUNCHER), "spawn", sys.executable, "-m", "GASACore.cli"]
    assert SegmenterLogic(engine=launcher).modelsCommand() == [*launcher[:-1], "GASACore.models.cli"]
    assert SegmenterLogic().modelsCommand()[1:] == ["-m", "GASACore.models.cli"]
    with pytest.raises(ValueError, match=r"must end with '-m GASACore\.cli'"):
        SegmenterLogic(engine=["gasa-segment"]).modelsCommand()
