"""What a program driving ``gasa-models`` relies on (the 3D Slicer module does): an import that names an
unknown archive's id itself and answers in JSON, and a ``start`` event naming the process group to stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from catalog_support import REPO_ROOT, sha256

from GASACore.events import NEW_SESSION_ENV, StartEvent, parse_event_line
from GASACore.models.cli import main
from GASACore.models.install import installed_models


def test_import_of_an_unknown_archive_under_a_fallback_id_answers_in_json(
    tmp_path: Path, layout_zip: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "brought by hand.zip"
    archive.write_bytes(layout_zip)
    assert main(["import", str(archive), "--json"]) == 1
    assert "the catalogue knows no archive like brought by hand.zip; name it with --id ID" in capsys.readouterr().err
    assert installed_models() == []

    assert main(["import", str(archive), "--fallback-id", "brought-by-hand", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = ("brought-by-hand", "0.0.0", sha256(layout_zip))
    assert (answer["id"], answer["version"], answer["archive_sha256"]) == expected
    assert Path(answer["path"]).is_dir() and [m.spec for m in installed_models()] == ["brought-by-hand@0.0.0"]
    assert main(["import", str(archive), "--fallback-id", "Not An Id"]) == 1
    assert "--id must be lower-case letters, digits" in capsys.readouterr().err


def test_a_program_is_told_which_process_group_to_stop(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), NEW_SESSION_ENV: "1"}
    command = [sys.executable, "-m", "GASACore.models.cli", "list", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    event = parse_event_line(first)
    assert isinstance(event, StartEvent) and event.pgid == event.pid, "it leads a session of its own"
    assert any(model["id"] == "gasa-demo-btcv" for model in json.loads("\n".join(rest)))
    plain = subprocess.run(command, env={**env, NEW_SESSION_ENV: "0"}, capture_output=True, text=True, timeout=120)
    assert json.loads(plain.stdout)[0]["id"] == "gasa-demo-btcv", "no start event unless asked for"
