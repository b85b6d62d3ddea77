"""Downloads from a loopback server: fresh, resumed, restarted, refused (checksum, size), HTTP errors with
retries, mirrors, timeouts, proxies, cancel; nothing half-installed and no partial file of a refused one."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from catalog_support import MODEL_FOLDER, serve_site_catalog, sha256
from model_server import ModelServer

from GASACore.errors import Cancelled
from GASACore.events import DownloadEvent
from GASACore.models import (
    ChecksumError,
    DownloadError,
    DownloadPolicy,
    fetch_model,
    install_dir,
    load_catalog,
    read_catalog_file,
)
from GASACore.models.install import part_path, read_install

FAST = DownloadPolicy(timeout=2.0, tries=3, backoff=0.01, chunk_size=8192)


def _entry(tmp_path: Path, server: ModelServer, data: bytes, **extra):
    return read_catalog_file(serve_site_catalog(tmp_path, server, data, **extra))[0]


def _nothing_left(entry) -> None:
    root = install_dir(entry.id, entry.version)
    assert not root.exists(), "a refused model must not be installed"
    assert not part_path(entry.id, entry.version).exists(), "a refused download must not leave its .part"
    leftovers = [p.name for p in root.parent.iterdir() if not p.name.endswith(".lock")] if root.parent.exists() else []
    assert leftovers == []


def test_fresh_download_installs_the_results_folder(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    entry = _entry(tmp_path, server, layout_zip)
    events: list[DownloadEvent] = []
    installed = fetch_model(entry, progress=events.append, policy=FAST)
    assert installed.model_path == install_dir(entry.id, entry.version) / MODEL_FOLDER
    assert (installed.model_path / "fold_0" / "checkpoint_final.pth").is_file()
    assert installed.archive_sha256 == sha256(layout_zip) and installed.pinned
    assert not part_path(entry.id, entry.version).exists()
    assert events[-1].received == len(layout_zip) and events[-1].fraction == 1.0
    assert [r.range for r in server.requests] == [None]
    again = fetch_model(entry, policy=FAST)  # installed: verified, not downloaded again
    assert again.model_path == installed.model_path and len(server.requests) == 1


def test_interrupted_download_resumes_with_range(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    entry = _entry(tmp_path, server, layout_zip)
    half = len(layout_zip) // 2
    server.switches.cut_after, server.switches.cuts = half, 1
    with pytest.raises(DownloadError, match=r"could not download site-model@1.0.0 from http://127.0.0.1:\d+/m.zip"):
        fetch_model(entry, policy=DownloadPolicy(timeout=2.0, tries=1, chunk_size=8192))
    part = part_path(entry.id, entry.version)
    assert part.stat().st_size == half, "an interrupted download keeps what it got"
    assert not install_dir(entry.id, entry.version).exists()
    fetch_model(entry, policy=FAST)
    first, second = server.requests
    assert first.range is None and second.range == f"bytes={half}-" and second.if_range == server.etag
    assert second.status == 206 and first.sent + second.sent == len(layout_zip), "no byte is downloaded twice"
    assert read_install(entry.id, entry.version) is not None and not part.exists()


def test_a_cut_connection_is_resumed_within_one_fetch(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    entry = _entry(tmp_path, server, layout_zip)
    server.switches.cut_after, server.switches.cuts = 20000, 2
    fetch_model(entry, policy=FAST)
    assert [r.range for r in server.requests] == [None, "bytes=20000-", "bytes=40000-"]
    assert sum(r.sent for r in server.requests) == len(layout_zip)


def test_a_server_ignoring_range_restarts_from_zero(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    entry = _entry(tmp_path, server, layout_zip)
    server.switches.range_support = False
    server.switches.cut_after, server.switches.cuts = 30000, 1
    installed = fetch_model(entry, policy=FAST)
    assert [r.status for r in server.requests] == [200, 200] and server.requests[1].range == "bytes=30000-"
    assert installed.archive_sha256 == sha256(layout_zip)


def test_tampered_archive_is_refused_and_deleted(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    entry = _entry(tmp_path, server, layout_zip)
    tampered = bytearray(layout_zip)
    tampered[len(tampered) // 2] ^= 0xFF
    server.files["/m.zip"] = bytes(tampered)
    with pytest.raises(ChecksumError, match=f"SHA-256 checksum is {sha256(bytes(tampered))}, the catalogue expects"):
        fetch_model(entry, policy=FAST)
    _nothing_left(entry)


@pytest.mark.parametrize("delta", [10, -10])
def test_wrong_size_is_refused(tmp_path: Path, server: ModelServer, layout_zip: bytes, delta: int) -> None:
    entry = _entry(tmp_path, server, layout_zip)
    entry = type(entry)(**{**entry.__dict__, "size": len(layout_zip) + delta})
    with pytest.raises(ChecksumError, match=f"the server's file has {len(layout_zip):,} bytes, the catalogue says"):
        fetch_model(entry, policy=FAST)
    _nothing_left(entry)
    assert len(server.requests) == 1, "refused from the server's headers, not retried"


def test_404_is_not_retried_and_500_is(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    entry = _entry(tmp_path, server, layout_zip, url=server.url("/missing.zip"))
    with pytest.raises(DownloadError, match=r"from http://127.0.0.1:\d+/missing.zip: HTTP 404"):
        fetch_model(entry, policy=FAST)
    assert len(server.requests) == 1
    server.switches.status["/m.zip"] = [500, 500, 500]
    entry = _entry(tmp_path, server, layout_zip)
    with pytest.raises(DownloadError, match=r"m.zip after 3 tries: HTTP 500"):
        fetch_model(entry, policy=FAST)
    assert len(server.requests) == 4
    _nothing_left(entry)


def test_mirrors_are_tried_in_order(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    server.switches.status["/m.zip"] = [503, 503, 503]
    mirrors = [server.url("/gone.zip"), server.url("/m.zip"), server.url("/copy.zip")]
    server.files["/copy.zip"] = layout_zip
    installed = fetch_model(_entry(tmp_path, server, layout_zip, url=mirrors), policy=FAST)
    assert [r.path for r in server.requests] == ["/gone.zip", "/m.zip", "/m.zip", "/m.zip", "/copy.zip"]
    assert installed.model_path.is_dir()


def test_a_stalled_server_times_out_with_a_clear_message(
    tmp_path: Path, server: ModelServer, layout_zip: bytes
) -> None:
    entry = _entry(tmp_path, server, layout_zip)
    server.switches.stall_after, server.switches.stall_seconds = 16384, 1.5
    policy = DownloadPolicy(timeout=0.3, tries=1, chunk_size=8192)
    with pytest.raises(DownloadError, match=r"after 1 tries: timed out after 0.3 s without data"):
        fetch_model(entry, policy=policy)
    assert 0 < part_path(entry.id, entry.version).stat().st_size < len(layout_zip)


def test_proxy_variables_are_honoured(
    tmp_path: Path, server: ModelServer, layout_zip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.files["/models/m.zip"] = layout_zip
    entry = _entry(tmp_path, server, layout_zip, url="http://models.hospital.invalid/models/m.zip")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.port}")
    fetch_model(entry, policy=FAST)
    assert [(r.path, r.proxied) for r in server.requests] == [("/models/m.zip", True)]


def test_no_proxy_bypasses_the_proxy(
    tmp_path: Path, server: ModelServer, layout_zip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _entry(tmp_path, server, layout_zip)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # the discard port: nothing answers there
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    fetch_model(entry, policy=FAST)
    assert [r.proxied for r in server.requests] == [False]


def test_cancel_keeps_the_partial_file(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    entry = _entry(tmp_path, server, layout_zip)
    stop = threading.Event()
    server.switches.stall_after, server.switches.stall_seconds = 16384, 0.5

    def progress(event: DownloadEvent) -> None:
        if event.received >= 8192:
            stop.set()

    with pytest.raises(Cancelled, match="cancelled"):
        fetch_model(entry, progress=progress, cancel=stop, policy=DownloadPolicy(timeout=2, chunk_size=8192))
    assert 0 < part_path(entry.id, entry.version).stat().st_size < len(layout_zip)
    assert not install_dir(entry.id, entry.version).exists()


def test_the_installed_catalog_entry_round_trips_through_load_catalog(
    tmp_path: Path, server: ModelServer, layout_zip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _entry(tmp_path, server, layout_zip)
    monkeypatch.setenv("GASA_CATALOG", str(tmp_path / "site.json"))
    entry = load_catalog().get("site-model")
    assert entry.urls == (server.url("/m.zip"),) and entry.size == len(layout_zip)
    assert fetch_model(entry, policy=FAST).spec == "site-model@1.0.0"
