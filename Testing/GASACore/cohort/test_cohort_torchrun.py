"""Cohorts end to end: ``torchrun --nproc_per_node=2 -m GASACore.cli DIR -o OUT -m MODEL --device cpu --resume``
on small real CT crops with the bundled demo model; a rerun redoes nothing; a corrupt case fails alone; a
half-done folder (and a killed run) resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from cohort_helpers import make_cohort

from GASACore.cli import main

REPO = Path(__file__).resolve().parents[3]
CASES = ["case1", "case2", "case3", "corrupt"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _torchrun(inputs: Path, out: Path, model: Path, *extra: str, nproc: int = 2) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}", "-m", "GASACore.cli", str(inputs), "-o", str(out), "-m", str(model),
        "--device", "cpu", "--resume", "--no-tta", "--progress", "none", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc), children first."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _summary(out: Path) -> dict[str, dict]:
    document = json.loads((out / "summary.json").read_text())
    return {row["case"]: row for row in document["cases"]} | {"": document}


def _same_grid(ct: Path, seg: Path) -> None:
    a, b = sitk.ReadImage(str(ct)), sitk.ReadImage(str(seg))
    assert a.GetSize() == b.GetSize() and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    assert np.allclose(a.GetSpacing(), b.GetSpacing()) and b.GetPixelID() == sitk.sitkUInt8


def test_two_cpu_ranks_segment_every_case_then_a_rerun_redoes_none(
    ct_crops: dict[str, Path], demo_model: Path, tmp_path: Path
) -> None:
    inputs, out = make_cohort(tmp_path / "in", ct_crops), tmp_path / "out"
    code, err = _finish(_torchrun(inputs, out, demo_model))
    assert code != 0, "a failed case makes the run fail"
    rows = _summary(out)
    assert rows[""]["world_size"] == 2 and rows[""]["counts"] == {"segmented": 3, "skipped": 0, "failed": 1}
    assert [rows[c]["status"] for c in CASES] == ["segmented", "segmented", "segmented", "failed"], err
    assert [rows[c]["rank"] for c in CASES] == [0, 1, 0, 1], "round robin over the sorted cases"
    assert "corrupt.nii.gz" in rows["corrupt"]["error"] and all(rows[c]["device"] == "cpu" for c in CASES)
    assert all(rows[c]["seconds"] > 0 for c in CASES[:3])
    for case in CASES[:3]:
        _same_grid(inputs / f"{case}.nii.gz", out / f"{case}.nii.gz")
    assert sorted(p.name for p in out.iterdir()) == [f"{c}.nii.gz" for c in CASES[:3]] + ["summary.csv", "summary.json"]
    assert "3 of 4 inputs segmented on 2 ranks" in err
    written = {c: (out / f"{c}.nii.gz").stat().st_mtime_ns for c in CASES[:3]}

    code, err = _finish(_torchrun(inputs, out, demo_model))
    rows = _summary(out)
    assert code != 0 and rows[""]["counts"] == {"segmented": 0, "skipped": 3, "failed": 1}, err
    assert [rows[c]["status"] for c in CASES[:3]] == ["skipped"] * 3 and rows["corrupt"]["status"] == "failed"
    assert {c: (out / f"{c}.nii.gz").stat().st_mtime_ns for c in CASES[:3]} == written, "nothing was rewritten"
    assert "(3 skipped: complete outputs, --resume)" in err


def test_resume_of_a_half_done_folder_without_torchrun(
    ct_crops: dict[str, Path], demo_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, out = make_cohort(tmp_path / "in", ct_crops, corrupt=False), tmp_path / "out"
    args = [str(inputs), "-o", str(out), "-m", str(demo_model), "--device", "cpu", "--no-tta", "--progress", "none"]
    assert main(args) == 0
    before = (out / "case1.nii.gz").stat().st_mtime_ns
    (out / "case2.nii.gz").unlink()  # as if killed between cases: one done, one never started...
    leftover = out / ".partial-0123456789ab-case3.nii.gz"  # ...and one killed while being written
    (out / "case3.nii.gz").rename(leftover)
    leftover.write_bytes(leftover.read_bytes()[:100])
    assert main(args) == 1, "without --resume the existing output is refused"
    assert f"output {out / 'case1.nii.gz'} exists; pass --overwrite to replace it, --resume to skip it" in (
        capsys.readouterr().err
    )

    assert main([*args, "--resume"]) == 0
    rows = _summary(out)
    assert [rows[c]["status"] for c in ("case1", "case2", "case3")] == ["skipped", "segmented", "segmented"]
    assert rows[""]["world_size"] == 1 and (out / "case1.nii.gz").stat().st_mtime_ns == before
    assert not leftover.exists(), "the killed writer's temporary is removed"
    for case in ("case2", "case3"):
        _same_grid(inputs / f"{case}.nii.gz", out / f"{case}.nii.gz")
    assert "3 of 3 inputs segmented (1 skipped: complete outputs, --resume)" in capsys.readouterr().err


def test_resume_never_replaces_a_file_that_is_not_a_label_map(
    ct_crops: dict[str, Path], demo_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, out = make_cohort(tmp_path / "in", ct_crops, corrupt=False), tmp_path / "out"
    out.mkdir()
    (out / "case2.nii.gz").write_text("the user's notes")
    args = [str(inputs), "-o", str(out), "-m", str(demo_model), "--device", "cpu", "--no-tta", "--progress", "none"]
    assert main([*args, "--resume"]) == 1
    rows = _summary(out)
    assert [rows[c]["status"] for c in ("case1", "case2", "case3")] == ["segmented", "failed", "segmented"]
    assert "is not a readable label map; remove it or pass --overwrite" in rows["case2"]["error"]
    assert (out / "case2.nii.gz").read_text() == "the user's notes"
    assert "case2: output" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--resume", "--overwrite"])
    assert stopped.value.code == 2
    assert "--resume keeps complete outputs and --overwrite replaces them: choose one" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds torchrun's workers in /proc (Linux)")
def test_a_killed_cohort_restarts_where_it_stopped(ct_crops: dict[str, Path], demo_model: Path, tmp_path: Path) -> None:
    inputs = make_cohort(tmp_path / "in", ct_crops, corrupt=False)
    for copy in range(2):  # six cases, so that the kill lands mid-run
        for name, path in ct_crops.items():
            (inputs / f"{name}_{copy}.nii.gz").write_bytes(path.read_bytes())
    out = tmp_path / "out"
    process = _torchrun(inputs, out, demo_model)
    deadline = time.monotonic() + 240
    while not any(out.glob("*.nii.gz")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    for pid in [*_descendants(process.pid), process.pid]:  # torchrun's workers lead their own sessions
        os.kill(pid, signal.SIGKILL)  # as a crashed node: no handler runs, nothing is cleaned up
    process.communicate(timeout=60)
    done_before = {p.name for p in out.glob("*.nii.gz")}
    assert done_before and not (out / "summary.json").exists(), "killed before the end"
    code, err = _finish(_torchrun(inputs, out, demo_model))
    rows = _summary(out)
    assert code == 0, err
    skipped = {f"{c}.nii.gz" for c, row in rows.items() if c and row["status"] == "skipped"}
    assert skipped == done_before and rows[""]["counts"]["segmented"] == 9 - len(done_before)
    assert not list(out.glob(".partial-*")), "no temporary is left"
