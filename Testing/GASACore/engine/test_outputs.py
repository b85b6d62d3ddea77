"""``gasa-segment`` outputs: checked before any work, never an input, locked against a second run, and a full
disk, ``ulimit -f`` or a read-only folder gives one line and leaves nothing; an unexpected error gives one line.

The refusals run no model (they come before it is loaded); the write failures run the real demo bundle.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))

from small_mounts import run_with_file_size_limit, tmpfs

from GASACore.cli import main
from GASACore.io.lockfile import lock_path

DEMO = Path(__file__).resolve().parents[3] / "Resources" / "models" / "gasa-demo-btcv"
NEVER_INPUT = "gasa-segment never replaces its inputs (not even with --overwrite): choose another output path"


@pytest.fixture()
def ct(small_ct: Path, tmp_path: Path) -> Path:
    """A copy of the small real CT in a folder of its own (the test's input, checked byte for byte)."""
    folder = tmp_path / "in"
    folder.mkdir()
    return Path(shutil.copy(small_ct, folder / "ct.nii.gz"))


def _segment(ct: Path, output: Path | str, *extra: str) -> list[str]:
    return [str(ct), "-o", str(output), "-m", str(DEMO), "--fast", "--progress", "none", *extra]


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a run that must fail (exit 1) before any model work."""
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("spelling", ["same path", "through ..", "symlink", "hard link"])
def test_an_output_that_is_the_input_is_refused_even_with_overwrite(
    ct: Path, tmp_path: Path, spelling: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = ct.read_bytes()
    output = {"same path": ct, "through ..": ct.parent / ".." / "in" / ct.name}.get(spelling)
    if output is None:
        output = tmp_path / "link.nii.gz"
        (output.symlink_to if spelling == "symlink" else output.hardlink_to)(ct)
    listing = _files(tmp_path)
    line = _refused(_segment(ct, output, "--overwrite"), capsys)
    assert line == f"gasa-segment: error: output {output} is the input {ct}; {NEVER_INPUT}"
    assert ct.read_bytes() == before
    assert _files(tmp_path) == listing, "no output, temporary or lock file"


@pytest.mark.parametrize("layout", [".mhd whose data file is vox.nii", "NIfTI pair"])
def test_an_output_that_is_an_inputs_voxel_data_file_is_refused(
    tmp_path: Path, layout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A header's data file is the patient's voxels too: ``-o vox.nii --overwrite`` replaced them."""
    from bad_inputs_itk import mha_header
    from bad_inputs_more import pair_bytes
    from bad_inputs_nifti import ct_values

    values = ct_values((20, 30, 40))
    if layout == "NIfTI pair":
        header, data = pair_bytes(values)
        (tmp_path / "ct.hdr").write_bytes(header)
        (tmp_path / "ct.img").write_bytes(data)
        source, data_file, output = tmp_path / "ct.hdr", tmp_path / "ct.img", tmp_path / "ct.img.nii"
        output.symlink_to(data_file)
    else:
        (tmp_path / "vox.nii").write_bytes(values.tobytes())
        (tmp_path / "ct.mhd").write_text(mha_header(data_file="vox.nii"))
        source, data_file = tmp_path / "ct.mhd", tmp_path / "vox.nii"
        output = data_file
    before, listing = data_file.read_bytes(), _files(tmp_path)
    line = _refused(_segment(source, output, "--overwrite"), capsys)
    assert line == (
        f"gasa-segment: error: output {output} is the voxel data file named by the input {source.name}, {data_file}; "
        f"{NEVER_INPUT}"
    )
    assert data_file.read_bytes() == before and _files(tmp_path) == listing


def test_an_output_inside_the_input_dicom_folder_is_refused(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dicom = Path(shutil.copytree(shared_data / "totalsegmentator" / "example_ct_dicom", tmp_path / "dicom"))
    listing = _files(dicom)
    for output in (dicom / "seg.nii.gz", dicom):  # a file in it, or the folder itself as the output folder
        line = _refused(_segment(dicom, output, "--overwrite"), capsys)
        where = output if output != dicom else dicom / "dicom.nii.gz"
        assert line == (
            f"gasa-segment: error: output {where} is inside the input DICOM folder {dicom}; gasa-segment never "
            "writes into its inputs (not even with --overwrite): choose another output path"
        )
    assert _files(dicom) == listing


@pytest.mark.parametrize(
    ("option", "name", "message"),
    [
        ("-o", "seg.png", "expected an output file name ending in one of .seg.nrrd, .nii.gz, .nii, .nrrd, .mha"),
        ("--overlay", "overlay.jpg", "expected a --overlay file name ending in .png"),
        ("--volumes", "volumes.txt", "expected a --volumes file name ending in one of .csv, .json"),
    ],
)
def test_an_unsupported_output_suffix_is_refused_before_the_model_runs(
    ct: Path, tmp_path: Path, option: str, name: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    seg = out / "seg.nii.gz"
    argv = _segment(ct, out / name) if option == "-o" else [*_segment(ct, seg), option, str(out / name)]
    assert _refused(argv, capsys) == f"gasa-segment: error: {message}, got {out / name}"
    assert _files(out) == []


@pytest.mark.parametrize("length", [240, 300])
def test_an_output_name_too_long_for_its_temporary_is_refused(ct: Path, tmp_path: Path, length: int, capsys) -> None:
    """A 247-byte name fits the file system's 255 but not with the 22-byte prefix of its temporary, a 307-byte one
    fits neither: both gave "[Errno 36] File name too long" before."""
    name = "x" * length + ".nii.gz"
    line = _refused(_segment(ct, tmp_path / name), capsys)
    assert line == (
        "gasa-segment: error: expected an output file name of at most 233 bytes (the file system's limit of 255 less "
        f"22 for the temporary file written first), got a name of {length + 7} bytes: {'x' * 40}...{'x' * 13}.nii.gz "
        f"in {tmp_path}"
    )


def test_an_output_folder_that_is_a_file_is_refused(ct: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("the user's notes")
    line = _refused(_segment(ct, blocker / "seg.nii.gz"), capsys)
    assert line == f"gasa-segment: error: expected an output folder, got the file {blocker}"
    line = _refused(_segment(ct, blocker / "sub" / "seg.nii.gz"), capsys)
    sub = blocker / "sub"
    assert line == f"gasa-segment: error: expected an output folder, got {sub}, where {blocker} is a file, not a folder"
    assert blocker.read_text() == "the user's notes"


def test_a_read_only_output_folder_is_refused_before_the_model_runs(ct: Path, tmp_path: Path, capsys) -> None:
    with tmpfs(tmp_path / "ro", read_only=True) as folder:
        line = _refused(_segment(ct, folder / "seg.nii.gz"), capsys)
        assert line == f"gasa-segment: error: cannot write to the output folder {folder}: read-only file system"
        line = _refused(_segment(ct, folder / "new" / "seg.nii.gz"), capsys)
        assert line == (
            f"gasa-segment: error: cannot write to the folder {folder} (to make the output folder {folder / 'new'}): "
            "read-only file system"
        )


def test_a_missing_output_folder_is_made(ct: Path, tmp_path: Path) -> None:
    output = tmp_path / "new" / "deeper" / "seg.nii.gz"
    assert main(_segment(ct, output)) == 0
    assert _files(tmp_path / "new") == ["deeper", "deeper/seg.nii.gz"], "the label map only: no lock left"


def test_two_cases_writing_one_file_are_refused(small_ct: Path, tmp_path: Path, capsys) -> None:
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    for name in ("a", "b"):
        shutil.copy(small_ct, inputs / f"{name}.nii.gz")
    (out / "b.nii.gz").symlink_to(out / "a.nii.gz")  # b's output would land on a's
    line = _refused(_segment(inputs, out, "--overwrite"), capsys)
    assert line == (
        f"gasa-segment: error: case a and case b would both write {out / 'b.nii.gz'}; give each output its own "
        "path (rename one of the inputs or choose another output)"
    )
    assert _files(out) == ["b.nii.gz"]


def test_an_output_another_run_is_writing_is_refused(ct: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "seg.nii.gz"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = lock_path(output)
        lock.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname()}))
        line = _refused(_segment(ct, output), capsys)
        assert line == (
            f"gasa-segment: error: output {output} is being written by another run (pid {other.pid} on "
            f"{socket.gethostname()}); wait for it to finish, or remove {lock} if no such run exists"
        )
        assert not output.exists() and json.loads(lock.read_text())["pid"] == other.pid
    finally:
        other.kill()
        other.wait()


def test_a_full_disk_gives_one_line_and_leaves_nothing(ct: Path, tmp_path: Path, capsys) -> None:
    before = ct.read_bytes()
    with tmpfs(tmp_path / "disk") as disk:  # 64 KB: the lock fits, the 160 KB .nii label map does not
        output = disk / "seg.nii"
        assert main(_segment(ct, output)) == 1
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1
        prefix = f"gasa-segment: error: ct: cannot write {output}: no space left on device (needs ~164.0 KB, "
        assert lines[0].startswith(prefix) and re.fullmatch(r"\d+\.0 KB free\)", lines[0][len(prefix) :])
        assert _files(disk) == []
    assert ct.read_bytes() == before


def test_the_file_size_limit_gives_one_line_and_leaves_nothing(ct: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    output = out / "seg.nii"
    argv = ["-m", "GASACore.cli", *_segment(ct, output)]
    result = run_with_file_size_limit(argv, 100 * 1024, ignore_signal=False)  # gasa-segment ignores SIGXFSZ
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"gasa-segment: error: ct: cannot write {output}: file too large for the file size limit (ulimit -f) of "
        "100.0 KB (needs ~164.0 KB)"
    )
    assert _files(out) == []


def test_an_unexpected_error_is_one_line_with_the_log(
    ct: Path, tmp_path: Path, gasa_home: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from GASACore.cohort import run

    def broken_loader(*_args: object) -> None:  # stands for a bug: nothing in the engine raises it on purpose
        raise RuntimeError("fold_0 went missing\nsecond line")

    monkeypatch.setattr(run, "_load_model", broken_loader)
    output = tmp_path / "seg.nii.gz"
    line = _refused(_segment(ct, output), capsys)
    logs = sorted((gasa_home / "logs").glob(f"gasa-segment-*-{os.getpid()}.log"))
    assert line == f"gasa-segment: internal error: RuntimeError: fold_0 went missing (details in {logs[-1]})"
    assert "Traceback (most recent call last)" in logs[-1].read_text() and "broken_loader" in logs[-1].read_text()
    assert not output.exists() and not lock_path(output).exists()
