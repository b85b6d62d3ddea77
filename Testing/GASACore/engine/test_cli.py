"""``gasa-segment`` end to end: geometry in = geometry out, DICOM and batch input, JSON progress, bad inputs,
existing outputs, the device resolved once per run, ``--check-device``, SIGTERM / SIGINT, session leadership."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from engine_images import reoriented

from GASACore.bundle import load_model, save_bundle
from GASACore.cli import main
from GASACore.errors import Cancelled
from GASACore.events import (
    NEW_SESSION_ENV,
    CaseEvent,
    DoneEvent,
    ErrorEvent,
    ProgressEvent,
    Stage,
    StartEvent,
    parse_event_line,
)
from GASACore.inference import device as device_module
from GASACore.interrupt import Interrupt

OBLIQUE = (
    math.cos(0.35), -math.sin(0.35), 0.0,
    math.sin(0.35), math.cos(0.35), 0.0,
    0.0, 0.0, 1.0,
)  # fmt: skip
DIRECTIONS = {
    "RAS": (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0),
    "LPS": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    "LAS": (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0),
    "oblique": OBLIQUE,
}


def _geometry(path: Path) -> tuple:
    image = sitk.ReadImage(str(path))
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def _assert_same_geometry(a: Path, b: Path) -> None:
    size_a, spacing_a, origin_a, direction_a = _geometry(a)
    size_b, spacing_b, origin_b, direction_b = _geometry(b)
    assert size_a == size_b
    np.testing.assert_allclose(spacing_a, spacing_b, atol=1e-5)
    np.testing.assert_allclose(origin_a, origin_b, atol=1e-4)
    np.testing.assert_allclose(direction_a, direction_b, atol=1e-6)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_every_orientation_keeps_its_geometry(small_ct: Path, nnunet_model: Path, tmp_path: Path) -> None:
    results = {}
    for name, direction in DIRECTIONS.items():
        ct = reoriented(small_ct, tmp_path / f"{name}.nii.gz", direction)
        out = tmp_path / f"{name}_seg.nii.gz"
        assert main([str(ct), "-o", str(out), "-m", str(nnunet_model), "--no-tta", "--progress", "none"]) == 0
        _assert_same_geometry(ct, out)
        results[name] = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    reference = results.pop("RAS")
    assert reference.max() > 0, "the model must find something in the crop"
    for name, labels in results.items():
        assert np.array_equal(labels, reference), f"{name}: nnU-Net models work in voxel order, labels must agree"


def test_anisotropic_spacing_and_tiny_volume(small_ct: Path, nnunet_model_resampling: Path, tmp_path: Path) -> None:
    image = sitk.ReadImage(str(small_ct))
    image.SetSpacing((0.8, 0.8, 5.0))
    aniso = tmp_path / "aniso.nrrd"
    sitk.WriteImage(image, str(aniso))
    tiny = tmp_path / "tiny.mha"
    sitk.WriteImage(sitk.Cast(image[:9, :7, :5], sitk.sitkFloat32), str(tiny))
    for source in (aniso, tiny):
        out = tmp_path / f"{source.stem}_seg.seg.nrrd"
        args = [str(source), "-o", str(out), "-m", str(nnunet_model_resampling), "--fast", "--progress", "none"]
        assert main(args) == 0
        _assert_same_geometry(source, out)


def test_dicom_folder(shared_data: Path, nnunet_model: Path, tmp_path: Path) -> None:
    dicom = shared_data / "totalsegmentator" / "example_ct_dicom"
    out = tmp_path / "dicom_seg.nrrd"
    assert main([str(dicom), "-o", str(out), "-m", str(nnunet_model), "--fast", "--progress", "none"]) == 0
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(dicom)))
    source = reader.Execute()
    result = sitk.ReadImage(str(out))
    assert result.GetSize() == source.GetSize() == (512, 512, 20)
    np.testing.assert_allclose(result.GetOrigin(), source.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(result.GetSpacing(), source.GetSpacing(), atol=1e-5)


def test_batch_continues_past_a_bad_case_and_reports_json(small_ct: Path, nnunet_model: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(small_ct, inputs / "a.nii.gz")
    reoriented(small_ct, inputs / "b.nii.gz", DIRECTIONS["LPS"])
    (inputs / "broken.nii.gz").write_text("this is not an image")
    out = tmp_path / "outputs"
    command = [sys.executable, "-m", "GASACore.cli", str(inputs), "-o", str(out), "-m", str(nnunet_model)]
    result = subprocess.run([*command, "--fast", "--progress", "json"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    parsed = [parse_event_line(line) for line in result.stdout.splitlines()]
    assert all(isinstance(e, (CaseEvent, ProgressEvent, DoneEvent, ErrorEvent)) for e in parsed)
    done = [e["case"] for e in events if e["event"] == "done"]
    errors = [e for e in events if e["event"] == "error"]
    assert sorted(done) == ["a", "b"]
    assert [e["case"] for e in errors] == ["broken"] and "broken.nii.gz" in errors[0]["message"]
    assert sorted(p.name for p in out.iterdir()) == ["a.nii.gz", "b.nii.gz", "summary.csv", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert [(c["case"], c["status"]) for c in summary["cases"]] == [("a", "segmented"), ("b", "segmented"),
                                                                    ("broken", "failed")]  # fmt: skip
    assert summary["counts"] == {"segmented": 2, "skipped": 0, "failed": 1} and summary["world_size"] == 1
    assert "broken.nii.gz" in summary["cases"][2]["error"] and summary["cases"][0]["device"] == "cpu"
    for case in ("a", "b"):
        fractions = [e["fraction"] for e in events if e.get("stage") == "predict" and e["event"] == "progress"]
        assert fractions and all(0.0 <= f <= 1.0 for f in fractions)
        del case
    overall = [e["overall"] for e in events if e["event"] == "progress"]
    assert all(0.0 <= f <= 1.0 for f in overall)
    assert "2 of 3 inputs segmented" in result.stderr


def test_main_job_outputs(small_ct: Path, nnunet_model: Path, tmp_path: Path, capsys) -> None:
    out, png, volumes = tmp_path / "seg.nii.gz", tmp_path / "overlay.png", tmp_path / "volumes.csv"
    args = [str(small_ct), "-o", str(out), "-m", str(nnunet_model), "--no-tta", "--progress", "none"]
    assert main([*args, "--overlay", str(png), "--volumes", str(volumes)]) == 0
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    rows = volumes.read_text().splitlines()
    assert rows[0] == "label,volume_ml" and len(rows) == 4
    liver_ml = float(rows[1].split(",")[1])
    assert liver_ml == pytest.approx((labels == 1).sum() * 27 / 1000, rel=1e-6)
    picture = sitk.ReadImage(str(png))
    assert picture.GetNumberOfComponentsPerPixel() == 3 and picture.GetSize()[0] > 40
    assert "liver" in capsys.readouterr().out


def _bad_image_files(folder: Path) -> dict[str, Path]:
    files = {}
    files["2D"] = folder / "slice.nii.gz"
    sitk.WriteImage(sitk.Image(32, 32, sitk.sitkInt16), str(files["2D"]))
    files["4D"] = folder / "series.nii.gz"
    volume = sitk.Image(16, 16, 8, sitk.sitkInt16)
    sitk.WriteImage(sitk.JoinSeries([volume, volume]), str(files["4D"]))
    nan = np.zeros((8, 16, 16), np.float32)
    nan[3, 4, 5] = np.nan
    files["NaN"] = folder / "nan.mha"
    sitk.WriteImage(sitk.GetImageFromArray(nan), str(files["NaN"]))
    files["text"] = folder / "notes.nii.gz"
    files["text"].write_text("patient notes, not an image")
    files["empty folder"] = folder / "empty"
    files["empty folder"].mkdir()
    return files


@pytest.mark.parametrize("kind", ["2D", "4D", "NaN", "text", "empty folder"])
def test_bad_input_gives_clear_error_and_no_output(
    kind: str, nnunet_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _bad_image_files(tmp_path)[kind]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = main([str(source), "-o", str(out_dir / "seg.nii.gz"), "-m", str(nnunet_model), "--progress", "none"])
    assert code == 1
    message = capsys.readouterr().err
    assert message.startswith("gasa-segment: error:") and len(message.strip().splitlines()) == 1
    expected_words = {"2D": "3D", "4D": "3D", "NaN": "NaN", "text": "image", "empty folder": "empty"}
    assert expected_words[kind].lower() in message.lower(), message
    assert list(out_dir.iterdir()) == []


def _special_input(folder: Path, kind: str) -> Path:
    if kind == "character device":
        return Path("/dev/zero")  # reading it never ends
    if kind == "FIFO (named pipe)":
        os.mkfifo(folder / "ct.nii.gz")  # reading it blocks for ever
        return folder / "ct.nii.gz"
    (folder / "a.nii.gz").symlink_to(folder / "b.nii.gz")
    (folder / "b.nii.gz").symlink_to(folder / "a.nii.gz")
    return folder / "a.nii.gz"


@pytest.mark.parametrize("kind", ["character device", "FIFO (named pipe)", "symbolic link loop"])
def test_a_device_pipe_or_link_loop_is_refused_by_name_before_it_is_opened(
    kind: str, nnunet_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _special_input(tmp_path, kind)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = main([str(source), "-o", str(out_dir / "seg.nii.gz"), "-m", str(nnunet_model), "--progress", "none"])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"gasa-segment: error: expected an image file or a folder of cases, got {source}, which is a {kind}"
    ]
    assert list(out_dir.iterdir()) == []


@pytest.fixture
def tiny_bundle(nnunet_model: Path, tmp_path: Path) -> Path:
    """The nnU-Net test model re-saved as a GASASegmenter bundle."""
    model = load_model(nnunet_model)
    save_bundle(
        tmp_path / "bundle",
        metadata={"name": "test"},
        architecture=model.architecture,
        preprocessing=model.preprocessing,
        labels=model.labels,
        fold_weights={"fold_0": model.load_fold(model.folds[0])},
    )
    return tmp_path / "bundle"


def test_tampered_weights_refused_before_running(tiny_bundle: Path, small_ct: Path, tmp_path: Path, capsys) -> None:
    weights = tiny_bundle / "fold_0.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    out = tmp_path / "seg.nii.gz"
    assert main([str(small_ct), "-o", str(out), "-m", str(tiny_bundle), "--progress", "none"]) == 1
    assert "SHA-256" in capsys.readouterr().err and not out.exists()


def test_model_with_other_channel_count(tiny_bundle: Path, small_ct: Path, tmp_path: Path, capsys) -> None:
    meta = json.loads((tiny_bundle / "model.json").read_text())
    meta["architecture"]["num_input_channels"] = 2
    (tiny_bundle / "model.json").write_text(json.dumps(meta))
    out = tmp_path / "seg.nii.gz"
    assert main([str(small_ct), "-o", str(out), "-m", str(tiny_bundle), "--progress", "none"]) == 1
    err = capsys.readouterr().err
    assert "2 input channels" in err and not out.exists()


def test_existing_output_is_never_overwritten(small_ct: Path, nnunet_model: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "seg.nii.gz"
    out.write_bytes(b"user's precious file")
    assert main([str(small_ct), "-o", str(out), "-m", str(nnunet_model), "--fast", "--progress", "none"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"user's precious file" and _leftovers(tmp_path) == []
    assert main([str(small_ct), "-o", str(out), "-m", str(nnunet_model), "--fast", "--overwrite"]) == 0
    assert sitk.ReadImage(str(out)).GetSize() == sitk.ReadImage(str(small_ct)).GetSize()


def test_bad_options(small_ct: Path, nnunet_model: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "seg.nii.gz"
    assert main([str(small_ct), "-o", str(out), "-m", str(nnunet_model), "--step-size", "0"]) == 1
    assert "step-size" in capsys.readouterr().err
    assert main([str(small_ct), "-o", str(out), "-m", str(tmp_path / "missing")]) == 1
    assert "model not found" in capsys.readouterr().err
    assert main([str(small_ct), "-o", str(out), "-m", str(nnunet_model), "--folds", "3"]) == 1
    assert "fold_3" in capsys.readouterr().err
    assert not out.exists()


def test_existing_outputs_are_refused_before_any_work(
    small_ct: Path, nnunet_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, out = tmp_path / "inputs", tmp_path / "outputs"
    inputs.mkdir()
    out.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(small_ct, inputs / f"{name}.nii.gz")
    (out / "b.nii.gz").write_bytes(b"kept")
    assert main([str(inputs), "-o", str(out), "-m", str(nnunet_model), "--fast", "--progress", "none"]) == 1
    assert f"output {out / 'b.nii.gz'} exists; pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["b.nii.gz"], "no case may run when an output exists"
    (out / "c.nii.gz").write_bytes(b"kept too")
    assert main([str(inputs), "-o", str(out), "-m", str(nnunet_model), "--fast"]) == 1
    assert "2 outputs exist" in capsys.readouterr().err
    seg, overlay = tmp_path / "seg.nii.gz", tmp_path / "overlay.png"
    overlay.write_bytes(b"an older picture")
    args = [str(small_ct), "-o", str(seg), "-m", str(nnunet_model), "--overlay", str(overlay), "--progress", "none"]
    assert main(args) == 1
    assert f"output {overlay} exists" in capsys.readouterr().err and not seg.exists()
    assert overlay.read_bytes() == b"an older picture"


def test_device_is_resolved_once_per_run(
    small_ct: Path, nnunet_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = device_module.cuda_environment
    monkeypatch.setattr(device_module, "cuda_environment", lambda: calls.append(1) or real())
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("a", "b"):
        shutil.copy(small_ct, inputs / f"{name}.nii.gz")
    args = [str(inputs), "-o", str(tmp_path / "out"), "-m", str(nnunet_model), "--fast", "--progress", "none"]
    assert main([*args, "--device", "auto"]) == 0
    assert len(calls) == 1, "one device resolution for the whole batch, none in the sliding window"


def test_explicit_cuda_on_this_machine_is_refused(small_ct: Path, nnunet_model: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "seg.nii.gz"
    assert main([str(small_ct), "-o", str(out), "-m", str(nnunet_model), "--device", "cuda:1"]) == 1
    assert "device 'cuda:1' was requested but CUDA is not usable: " in capsys.readouterr().err and not out.exists()


def test_all_names_the_fold_all_folder(small_ct: Path, nnunet_model: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "seg.nii.gz"
    assert main([str(small_ct), "-o", str(out), "-m", str(nnunet_model), "--folds", "all"]) == 1
    assert "folds ['fold_all'] are not in model" in capsys.readouterr().err and not out.exists()


def test_check_device_prints_one_json_object() -> None:
    command = [sys.executable, "-m", "GASACore.cli", "--check-device"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(result.stdout.strip().splitlines()) == 1
    assert {"device", "cuda_usable", "reason", "gpus", "torch", "cuda", "arch_list"} <= set(report)
    assert report["device"] == "cpu" and report["requested"] == "auto" and report["cuda_usable"] is False
    expected = "torch was built without CUDA" if report["cuda"] is None else "no CUDA device visible"
    assert report["reason"].startswith(f"CUDA not usable ({expected}") and report["reason"].endswith("using the CPU")
    asked = subprocess.run([*command, "--device", "CUDA:1"], capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(asked.stdout)
    assert report["device"] == "cuda:1" and report["cuda_usable"] is False
    assert report["reason"].startswith("device 'cuda:1' was requested but CUDA is not usable")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--check-device", "ct.nii.gz"], "--check-device takes no INPUT"),
        (["--check-device", "-m", "model"], "--check-device takes no -m/--model"),
        (["ct.nii.gz"], "the following arguments are required: -o/--output, -m/--model"),
        ([], "the following arguments are required: INPUT, -o/--output, -m/--model"),
        (["ct.nii.gz", "-o", "x", "-m", "y", "--step-size", "half"], "argument --step-size: invalid float value"),
    ],
)
def test_arguments_that_do_not_go_together(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and message in capsys.readouterr().err


def test_bad_device_for_check_device(capsys) -> None:
    assert main(["--check-device", "--device", "gpu"]) == 1
    assert "--device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'" in capsys.readouterr().err


def _engine(*argv: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "GASACore.cli", *argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_run_within_one_window(
    example_ct: Path, nnunet_model: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    """A real run mid-prediction: stops within a window, no output, no temporary file, one line, 128 + N."""
    out_dir, temp = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    temp.mkdir()
    out = out_dir / "seg.nii.gz"
    env = {**os.environ, "TMPDIR": str(temp)}
    engine = _engine(str(example_ct), "-o", str(out), "-m", str(nnunet_model), "--device", "cpu", "--progress", "json",
                     env=env)  # fmt: skip
    assert engine.stdout is not None and engine.stderr is not None
    for line in engine.stdout:
        event = parse_event_line(line)
        if isinstance(event, ProgressEvent) and event.stage is Stage.PREDICT and event.fraction > 0:
            break
    else:
        pytest.fail(f"the run ended before predicting: {engine.stderr.read()}")
    engine.send_signal(signum)
    rest = [parse_event_line(line) for line in engine.stdout]
    assert engine.wait(timeout=60) == 128 + signum
    message = f"interrupted by {signal.Signals(signum).name}; stopped without writing an output"
    assert engine.stderr.read().splitlines() == [f"gasa-segment: {message}"]
    windows_after = [e for e in rest if isinstance(e, ProgressEvent)]
    assert len(windows_after) <= 2, f"it went on for {len(windows_after)} more windows"  # one may be under way
    assert rest[-1] == ErrorEvent(message)
    assert list(out_dir.iterdir()) == [] and list(temp.iterdir()) == []


def test_a_signal_while_writing_lets_the_file_complete_then_removes_it(small_ct: Path, tmp_path: Path) -> None:
    """The first signal does not cut a write short; the run then stops and takes its output away."""
    interrupt = Interrupt()
    interrupt.install()
    written = tmp_path / "seg.nii.gz"
    try:
        with interrupt.deferred():
            os.kill(os.getpid(), signal.SIGTERM)  # delivered here, in the middle of the "write"
            written.write_bytes(small_ct.read_bytes())
        assert interrupt.event.is_set() and written.stat().st_size == small_ct.stat().st_size
        with pytest.raises(Cancelled, match="interrupted by SIGTERM"):
            interrupt.check()
        interrupt.event.clear()
        interrupt.predicting = True
        os.kill(os.getpid(), signal.SIGINT)  # during the prediction: only the window loop's cancel signal
        assert interrupt.event.is_set()
        with pytest.raises(Cancelled, match="interrupted by SIGINT"):
            os.kill(os.getpid(), signal.SIGINT)  # a second signal stops at once
    finally:
        interrupt.restore()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize("own_session", [False, True], ids=["child", "session-leader"])
def test_engine_launched_by_the_module_leads_its_own_session(own_session: bool) -> None:
    env = {**os.environ, NEW_SESSION_ENV: "1"}
    engine = _engine("--check-device", env=env, start_new_session=own_session)
    out, err = engine.communicate(timeout=120)
    assert engine.returncode == 0, err
    first, answer = out.splitlines()
    assert parse_event_line(first) == StartEvent(engine.pid, engine.pid)
    assert json.loads(answer)["device"] == "cpu"


def test_describe_model_prints_one_json_object_without_torch(tiny_bundle: Path, nnunet_model: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"  # the module asks from Slicer's environment: torch may not even be installed
        "from GASACore.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    for model, expected_format in ((tiny_bundle, "bundle-folder"), (nnunet_model, "nnunet-results-folder")):
        command = [sys.executable, "-c", code, "--describe-model", str(model)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.strip().splitlines()) == 1
        description = json.loads(result.stdout)
        assert description["format"] == expected_format and description["path"] == str(model.absolute())
        assert [label["name"] for label in description["labels"]] == [label.name for label in load_model(model).labels]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--describe-model", "/nonexistent/model"], 1, "gasa-segment: error: model not found: /nonexistent/model"),
        (["--describe-model", "m", "ct.nii.gz"], 2, "--describe-model takes no INPUT"),
        (["--describe-model", "m", "--check-device"], 2, "--check-device and --describe-model cannot be asked"),
    ],
)
def test_describe_model_refuses_what_it_cannot_answer(argv: list[str], code: int, message: str, capsys) -> None:
    if code == 2:
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
    else:
        assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and len([line for line in err.splitlines() if "error" in line]) == 1
