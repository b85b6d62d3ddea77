"""Issue 11's acceptance, end to end through the installed console scripts in subprocesses.

With GASA_HOME and GASA_CATALOG in a temporary folder and a catalogue whose entry (format nnunet, url on
127.0.0.1, size, sha256) serves a zip of an nnU-Net v2 results folder trained with nnUNetTrainerNoMirroring:
``gasa-models list`` shows it, ``gasa-models fetch ID`` installs it, ``gasa-segment CT -o OUT -m ID --offline``
segments the real sample CT in its geometry without opening a socket; an entry with a wrong sha256 is refused
naming the checksum and leaves nothing behind; an entry never fetched fails clearly under --offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from catalog_support import MODEL_FOLDER, REPO_ROOT, remote_entry, write_catalog
from model_server import ModelServer

from GASACore.events import DownloadEvent, parse_event_line

#: Loaded first by every Python subprocess that has it on PYTHONPATH: no socket may connect.
NO_NETWORK = """
import os, socket
def _refuse(self, *args, **kwargs):
    raise OSError("test hook: a network connection was attempted under --offline")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
with open(os.environ["GASA_TEST_HOOK_MARKER"], "a") as marker:
    marker.write("loaded\\n")
"""


def _script(name: str) -> str:
    """The console script ``name`` installed next to this Python (``pip install -e .`` creates it)."""
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        pytest.fail(f"console script {name} is not installed; run `pip install --no-deps -e .` (pyproject scripts)")
    return found


def _run(command: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_fetch_then_offline_segment_through_the_console_scripts(
    tmp_path: Path, server: ModelServer, model_zip: bytes, example_ct: Path
) -> None:
    server.files["/tiny.zip"] = model_zip
    wrong = remote_entry("tiny-tampered", server.url("/tiny.zip"), model_zip, sha256="0" * 64)
    never = remote_entry("tiny-never", server.url("/never.zip"), model_zip)
    good = remote_entry("tiny-organs", server.url("/tiny.zip"), model_zip)
    catalog = write_catalog(tmp_path / "catalog.json", good, wrong, never)
    home = tmp_path / "home"
    env = {**os.environ, "GASA_HOME": str(home), "GASA_CATALOG": str(catalog), "PYTHONPATH": str(REPO_ROOT)}

    listed = _run([_script("gasa-models"), "list"], env)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("tiny-organs "))
    assert "not installed" in row and "Apache-2.0" in row and "pinned" in row
    as_json = {m["id"]: m for m in json.loads(_run([_script("gasa-models"), "list", "--json"], env).stdout)}
    assert as_json["tiny-organs"]["size"] == len(model_zip) and as_json["tiny-organs"]["state"] == "not installed"

    fetched = _run([_script("gasa-models"), "fetch", "tiny-organs", "--progress", "json"], env)
    assert fetched.returncode == 0, fetched.stderr
    events = [parse_event_line(line) for line in fetched.stdout.splitlines()[:-1]]
    assert events and all(isinstance(e, DownloadEvent) for e in events) and events[-1].fraction == 1.0
    model_path = home / "models" / "tiny-organs" / "1.0.0" / MODEL_FOLDER
    assert fetched.stdout.splitlines()[-1] == f"tiny-organs@1.0.0: {model_path}"
    assert "installed" in _run([_script("gasa-models"), "list"], env).stdout.split("tiny-organs ")[1].splitlines()[0]
    requests_after_fetch = len(server.requests)

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NO_NETWORK, encoding="utf-8")
    marker = tmp_path / "hook-loaded.txt"
    offline_env = {**env, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO_ROOT)])}
    offline_env["GASA_TEST_HOOK_MARKER"] = str(marker)
    output = tmp_path / "ct_seg.nii.gz"
    segmented = _run([_script("gasa-segment"), str(example_ct), "-o", str(output), "-m", "tiny-organs", "--offline",
                      "--device", "cpu", "--fast", "--progress", "none"], offline_env)  # fmt: skip
    assert segmented.returncode == 0, segmented.stderr
    assert marker.read_text().count("loaded") >= 1, "the no-network hook must have been active"
    source, labels = sitk.ReadImage(str(example_ct)), sitk.ReadImage(str(output))
    assert labels.GetSize() == source.GetSize()
    np.testing.assert_allclose(labels.GetSpacing(), source.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(labels.GetOrigin(), source.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(labels.GetDirection(), source.GetDirection(), atol=1e-6)
    values = np.unique(sitk.GetArrayFromImage(labels))
    assert 1 in values and set(values) <= {0, 1, 2, 3}, f"liver (1) expected among {values}"

    refused = _run([_script("gasa-models"), "fetch", "tiny-tampered", "--progress", "none"], env)
    assert refused.returncode == 1
    assert f"SHA-256 checksum is {_sha(model_zip)}, the catalogue expects {'0' * 64}" in refused.stderr
    leftovers = sorted(p.name for p in (home / "models" / "tiny-tampered").glob("*"))
    assert leftovers == [], f"a refused model leaves nothing behind, found {leftovers}"

    missing = _run([_script("gasa-segment"), str(example_ct), "-o", str(tmp_path / "never.nii.gz"), "-m", "tiny-never",
                    "--offline", "--progress", "none"], offline_env)  # fmt: skip
    assert missing.returncode == 1
    assert ("model tiny-never@1.0.0 is not installed and --offline forbids downloading it; run `gasa-models fetch "
            "tiny-never` on a machine with internet, or `gasa-models import ARCHIVE`") in missing.stderr  # fmt: skip
    assert not (tmp_path / "never.nii.gz").exists()
    assert len(server.requests) == requests_after_fetch + 1, "offline runs sent no request (only the tampered fetch)"


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
