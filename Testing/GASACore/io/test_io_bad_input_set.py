"""The bad-input set (bad_inputs.py): each input is refused with its exact error class and message, writes
nothing, and the bombs among them stay far below 2 GB of memory and a few seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bad_inputs import BAD_INPUTS

from GASACore.io import read_image

REPO_ROOT = Path(__file__).resolve().parents[3]


def _tree(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.lstat().st_size) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_refused_exactly(
    tmp_path: Path, dicom_slices: list[str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    case = BAD_INPUTS[name]
    path = case.build(tmp_path, dicom_slices)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    before = _tree(tmp_path)
    started = time.perf_counter()
    with pytest.raises(case.error, match=case.message) as error:
        read_image(path)
    elapsed = time.perf_counter() - started
    assert type(error.value) is case.error, f"{type(error.value).__name__}: {error.value}"
    assert str(path) in str(error.value) or path.name in str(error.value)
    assert "\n" not in str(error.value)  # one line
    assert _tree(tmp_path) == before  # nothing written, nothing changed
    assert elapsed < 10.0, f"{name} took {elapsed:.1f} s to refuse"


_MEASURE = """
import json, os, resource, sys, time
from GASACore.io import read_image
from GASACore.errors import InputError
results = {}
for name, path, env in json.loads(sys.argv[1]):
    os.environ.pop("GASA_MAX_IMAGE_BYTES", None)
    os.environ.update(env)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        read_image(path)
        outcome = "read"
    except InputError as err:
        outcome = type(err).__name__
    results[name] = {
        "outcome": outcome,
        "seconds": time.perf_counter() - started,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "before_mb": before / 1024,
    }
print(json.dumps(results))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage is POSIX only")
def test_bombs_are_refused_with_little_memory_and_time(tmp_path: Path, dicom_slices: list[str]) -> None:
    """Headers claiming 17 GB and gzip streams expanding to 1-8.6 GB: peak RSS of the reading process stays low."""
    bombs = {name: case for name, case in BAD_INPUTS.items() if case.bomb}
    assert len(bombs) >= 6
    jobs = []
    for index, (name, case) in enumerate(bombs.items()):
        folder = tmp_path / f"bomb_{index}"
        folder.mkdir()
        jobs.append((name, str(case.build(folder, dicom_slices)), case.env))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("GASA_MAX_IMAGE_BYTES", None)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(jobs)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, case in bombs.items():
        result = results[name]
        assert result["outcome"] == case.error.__name__, (name, result)
        assert result["seconds"] < 5.0, (name, result)
        assert result["peak_mb"] - result["before_mb"] < 200, (name, result)
    assert max(result["peak_mb"] for result in results.values()) < 2048, results
