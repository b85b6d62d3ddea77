"""Installs: unsafe archives refused with nothing left, unpinned hashes recorded then enforced, offline
imports, --offline without a socket, the lock between two processes, verify / remove / path."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from catalog_support import MODEL_FOLDER, REPO_ROOT, serve_site_catalog, sha256
from model_server import ModelServer

from GASACore.errors import BundleIntegrityError, ModelError
from GASACore.models import (
    DownloadPolicy,
    OfflineError,
    fetch_model,
    import_model,
    install_dir,
    installed_models,
    list_models,
    load_catalog,
    remove_model,
    resolve_model,
    verify_install,
)
from GASACore.models.install import lock_path, part_path
from GASACore.models.lock import file_lock

FAST = DownloadPolicy(timeout=2.0, tries=2, backoff=0.01, chunk_size=8192)


def _catalog(tmp_path: Path, server: ModelServer, data: bytes, **extra):
    return load_catalog([serve_site_catalog(tmp_path, server, data, **extra)])


def _zip(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0x20  # a symbolic link, as `zip --symlinks` stores it
            archive.writestr(info, target)
    return buffer.getvalue()


def _bomb() -> bytes:
    """Five small members whose headers declare about 4 GiB each: 20 GiB unpacked, more than the 16 GiB limit."""
    data = bytearray(_zip({f"m/fold_0/blob_{index}.bin": b"\0" * 1024 for index in range(5)}))
    declared = (0xFFFFFFF0).to_bytes(4, "little")
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):  # central and local headers
        start = data.find(signature)
        while start >= 0:
            data[start + offset : start + offset + 4] = declared
            start = data.find(signature, start + 4)
    return bytes(data)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("traversal", "unsafe member path '../../escape.txt'"),
        ("absolute", "unsafe member path '/etc/cron.d/x'"),
        ("link", "unsafe member path 'm/fold_0/checkpoint_final.pth'"),
        ("bomb", "would unpack to 20.00 GiB"),
        ("layout", "expected exactly one folder holding plans.json"),
    ],
)
def test_unsafe_or_malformed_archives_are_refused_with_nothing_left(
    tmp_path: Path, server: ModelServer, layout_zip: bytes, kind: str, message: str
) -> None:
    with zipfile.ZipFile(io.BytesIO(layout_zip)) as good:
        members = {name: good.read(name) for name in good.namelist()}
    archives = {
        "traversal": lambda: _zip({**members, "../../escape.txt": b"x"}),
        "absolute": lambda: _zip({**members, "/etc/cron.d/x": b"x"}),
        "link": lambda: _zip({"m/plans.json": b"{}"}, {"m/fold_0/checkpoint_final.pth": "/etc"}),
        "bomb": _bomb,
        "layout": lambda: _zip({name.replace("plans.json", "plan.json"): data for name, data in members.items()}),
    }
    data = archives[kind]()
    entry = _catalog(tmp_path, server, data).get("site-model")
    with pytest.raises(ModelError, match=message):
        fetch_model(entry, policy=FAST)
    models = install_dir(entry.id, entry.version).parent
    assert sorted(p.name for p in models.iterdir()) == [], "no install, no temporary folder, no .part, no lock"
    assert not (tmp_path / "escape.txt").exists() and not Path("/etc/cron.d/x").exists()


def test_an_unpinned_model_records_its_first_hash_and_enforces_it(
    tmp_path: Path, server: ModelServer, layout_zip: bytes
) -> None:
    catalog = _catalog(tmp_path, server, layout_zip, pinned=False)
    [status] = [s for s in list_models(catalog) if s.entry.id == "site-model"]
    assert status.summary().endswith("Apache-2.0 (unpinned)") and status.state == "not installed"
    installed = fetch_model(catalog.get("site-model"), policy=FAST)
    assert not installed.pinned and installed.archive_sha256 == sha256(layout_zip)
    record = json.loads((installed.root / "gasa-install.json").read_text())
    assert record["files"][f"{MODEL_FOLDER}/fold_0/checkpoint_final.pth"] == sha256(
        (installed.model_path / "fold_0" / "checkpoint_final.pth").read_bytes()
    )
    assert resolve_model("site-model", catalog=catalog) == installed.model_path
    checkpoint = installed.model_path / "fold_0" / "checkpoint_final.pth"
    with checkpoint.open("r+b") as stream:
        stream.seek(1000)
        stream.write(b"\x00tampered")
    with pytest.raises(BundleIntegrityError, match=r"checkpoint_final.pth has SHA-256 checksum [0-9a-f]{64}.*unpinned"):
        resolve_model("site-model", catalog=catalog, offline=True)
    assert len(server.requests) == 1


def test_offline_never_downloads_and_says_what_to_do(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    catalog = _catalog(tmp_path, server, layout_zip)
    expected = (
        "site-model@1.0.0 is not installed and --offline forbids downloading it; run `gasa-models fetch site-model` "
        "on a machine with internet, or `gasa-models import ARCHIVE`"
    )
    with pytest.raises(OfflineError, match=re.escape(expected)):
        resolve_model("site-model", offline=True, catalog=catalog)
    assert server.requests == []
    with pytest.raises(ModelError, match="neither an existing path nor a catalogue id"):
        resolve_model("no-such-model", offline=True, catalog=catalog)


def test_import_of_an_archive_brought_by_hand(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    catalog = _catalog(tmp_path, server, layout_zip)
    archive = tmp_path / "m.zip"  # the file name of the catalogue's URL: matched without --id
    archive.write_bytes(layout_zip)
    installed = import_model(archive, catalog)
    assert installed.spec == "site-model@1.0.0" and installed.pinned and server.requests == []
    assert resolve_model("site-model", offline=True, catalog=catalog) == installed.model_path
    remove_model("site-model")
    tampered = tmp_path / "copy.zip"
    tampered.write_bytes(layout_zip[:-1] + b"\x01")
    with pytest.raises(ModelError, match="its SHA-256 checksum is"):
        import_model(tampered, catalog, model_id="site-model")
    assert not install_dir("site-model", "1.0.0").exists()


def test_import_of_a_folder_under_a_new_id(tmp_path: Path, published_model: Path) -> None:
    installed = import_model(published_model, load_catalog(), model_id="my-model", version="1.2.0")
    assert installed.spec == "my-model@1.2.0" and installed.model_path.name == published_model.name
    verify_install(installed)
    assert [m.spec for m in installed_models()] == ["my-model@1.2.0"]
    with pytest.raises(ModelError, match="exists already"):
        import_model(published_model, load_catalog(), model_id="my-model", version="1.2.0")
    with pytest.raises(ModelError, match="name it with --id ID"):
        import_model(shutil.make_archive(str(tmp_path / "x"), "zip", published_model), load_catalog())


def test_a_stale_lock_of_a_dead_process_is_broken(tmp_path: Path) -> None:
    lock = lock_path("site-model", "1.0.0")
    lock.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename, "started": 0}))
    with file_lock(lock, what="installing", timeout=2):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
    lock.write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename, "started": 0}))
    waiting = file_lock(lock, what="installing", timeout=0.3, poll=0.05)
    message = r"another process \(pid \d+ on .*\) is still installing after 0\.3 s"
    with pytest.raises(ModelError, match=message), waiting:
        pass


def test_two_processes_fetching_at_once_download_once(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    _catalog(tmp_path, server, layout_zip)
    server.switches.stall_after, server.switches.stall_seconds = 16384, 1.0  # the first one is slow
    env = {**os.environ, "GASA_CATALOG": str(tmp_path / "site.json"), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "GASACore.models.cli", "fetch", "site-model", "--progress", "none"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    path = str(install_dir("site-model", "1.0.0") / MODEL_FOLDER)
    assert all(out.strip() == f"site-model@1.0.0: {path}" for out, _ in outputs), outputs
    assert len(server.requests) == 1 and server.requests[0].sent == len(layout_zip), "downloaded once"
    assert not part_path("site-model", "1.0.0").exists() and not lock_path("site-model", "1.0.0").exists()


def test_gasa_models_verify_remove_and_path(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    from GASACore.models.cli import main

    _catalog(tmp_path, server, layout_zip)
    os.environ["GASA_CATALOG"] = str(tmp_path / "site.json")  # restored by fresh_home's monkeypatch
    handler_before = signal.getsignal(signal.SIGTERM)
    assert main(["fetch", "site-model", "--progress", "none"]) == 0
    assert signal.getsignal(signal.SIGTERM) is handler_before  # main() in-process leaves the caller's handler
    assert main(["verify", "site-model"]) == 0
    (install_dir("site-model", "1.0.0") / MODEL_FOLDER / "plans.json").write_text("{}")
    assert main(["verify", "site-model@1.0.0"]) == 1
    assert main(["remove", "site-model"]) == 0 and not install_dir("site-model", "1.0.0").exists()
    assert main(["remove", "site-model"]) == 1
    assert main(["path", "site-model", "--offline"]) == 1
    assert main(["fetch", "site-model", "--version", "9.0.0"]) == 1
    assert main(["path", "gasa-demo-btcv", "--offline"]) == 0


def test_catalogue_labels_and_description_of_an_installed_model(
    tmp_path: Path, server: ModelServer, layout_zip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from GASACore.labels import BTCV_LABELS
    from GASACore.models import describe_catalog_model, load_model_spec

    labels = [
        {"value": 1, "name": "liver", "source_name": "liver", "maps_to": {"label_set": "btcv", "value": 6}},
        {"value": 2, "name": "spleen", "source_name": "spleen", "maps_to": {"label_set": "btcv", "value": 1}},
    ]
    recipe = {"name": "nnunet", "step_size": 0.5}
    _catalog(tmp_path, server, layout_zip, labels=labels, recipe=recipe)
    monkeypatch.setenv("GASA_CATALOG", str(tmp_path / "site.json"))
    before = describe_catalog_model("site-model")
    assert before["installed"] is False and [label["name"] for label in before["labels"]] == ["liver", "spleen"]
    assert before["catalog"]["size"] == len(layout_zip) and before["license"] == "Apache-2.0"
    assert server.requests == [], "describing never downloads"
    model = load_model_spec("site-model")  # downloads on first use
    liver = next(label for label in model.labels if label.value == 1)
    assert liver.terminology == BTCV_LABELS[5].terminology and liver.color == BTCV_LABELS[5].color
    assert next(label for label in model.labels if label.value == 3).name == "kidney", "unlisted labels keep theirs"
    after = describe_catalog_model("site-model@1.0.0")
    assert after["installed"] is True and after["format"] == "nnunet-results-folder"
    assert after["catalog"]["recipe"] == recipe and after["labels"][0]["terminology_entry"].count("SCT^10200004^Liver")
    assert len(server.requests) == 1


def test_remove_also_drops_an_interrupted_download(tmp_path: Path, server: ModelServer, layout_zip: bytes) -> None:
    entry = _catalog(tmp_path, server, layout_zip).get("site-model")
    server.switches.cut_after, server.switches.cuts = 10000, 1
    with pytest.raises(ModelError):
        fetch_model(entry, policy=DownloadPolicy(timeout=2, tries=1, chunk_size=4096))
    assert part_path("site-model", "1.0.0").exists()
    assert remove_model("site-model") == ["site-model@1.0.0"] and not part_path("site-model", "1.0.0").exists()


def test_the_progress_bar_shows_a_download(capsys: pytest.CaptureFixture[str]) -> None:
    from GASACore.events import DownloadEvent
    from GASACore.progress import BarSink

    bar = BarSink()
    for received in (0, 1 << 20, 3 << 20):
        bar.emit(DownloadEvent("site-model@1.0.0", received, 3 << 20))
    bar.close()
    shown = capsys.readouterr().err
    assert "site-model@1.0.0" in shown and "100%" in shown and "3.00M" in shown
