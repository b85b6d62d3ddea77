"""End to end on a tiny real-CT data set: convert -> plan -> train -> continue -> export -> reload -> segment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from Testing.train.pipeline_helpers import cli_env, run_cli, write_tiny_pairs

DATASET = "Dataset991_TinyCT"
RESULTS = "GASATrainer__nnUNetPlans_gasa-unet__3d_fullres"
SMALL_PLAN = [
    "--gpu-memory-gb",
    "0.1",
    "--base-features",
    "4",
    "--max-features",
    "32",
    "--gasa-dim",
    "8",
    "--gasa-heads",
    "2",
    "-j",
    "1",
]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gasa_train")
    env = cli_env(root)
    pairs = write_tiny_pairs(shared_data, root / "pairs")
    run_cli(
        [
            "convert",
            "pairs",
            str(pairs / "images"),
            str(pairs / "labels"),
            "--labels",
            str(pairs / "labels.json"),
            "--remap",
            str(pairs / "remap.json"),
            "--dataset-id",
            "991",
            "--name",
            "TinyCT",
            "--target",
            str(root / "raw"),
            "--copy",
        ],
        env,
    )
    run_cli(["plan", "991", "--variants", "gasa-unet", "gasa-l", *SMALL_PLAN], env)
    common = [
        "train",
        "991",
        "--variant",
        "gasa-unet",
        "--fold",
        "all",
        "--device",
        "cpu",
        "--iterations",
        "2",
        "--val-iterations",
        "1",
        "--augmentation-workers",
        "0",
    ]
    run_cli([*common, "--epochs", "1", "--no-validation"], env)
    run_cli([*common, "--epochs", "2", "--continue"], env)
    results = root / "results" / DATASET / RESULTS
    run_cli(["export", str(results), str(root / "bundle"), "--label-set", "btcv", "--name", "tiny-test"], env)
    return {"root": root, "results": results, "bundle": root / "bundle"}


def test_plan_writes_trainable_gasa_plans(pipeline: dict[str, Path]) -> None:
    folder = pipeline["root"] / "preprocessed" / DATASET
    for variant, network in (("gasa-unet", "GASAPlainConvUNet"), ("gasa-l", "GASAResidualEncoderUNet")):
        plans = json.loads((folder / f"nnUNetPlans_{variant}.json").read_text())
        arch = plans["configurations"]["3d_fullres"]["architecture"]
        assert plans["plans_name"] == f"nnUNetPlans_{variant}"
        assert arch["network_class_name"] == f"GASACore.network.unets.{network}"
        assert arch["arch_kwargs"]["gasa_dim"] == 8 and arch["arch_kwargs"]["gasa_heads"] == 2
        assert arch["arch_kwargs"]["patch_size"] == plans["configurations"]["3d_fullres"]["patch_size"]


def test_training_writes_log_curve_and_resumes(pipeline: dict[str, Path]) -> None:
    fold = pipeline["results"] / "fold_all"
    epochs = [json.loads(line) for line in (fold / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [0, 1]  # epoch 1 came from --continue
    assert all(e["train_loss"] is not None and e["lr"] > 0 and len(e["pseudo_dice"]) == 3 for e in epochs)
    assert epochs[1]["lr"] < epochs[0]["lr"]  # poly schedule over 2 epochs
    assert (fold / "progress.png").stat().st_size > 1000
    assert (fold / "checkpoint_final.pth").is_file()
    record = json.loads((fold / "gasa_training.json").read_text())
    assert len(record["sessions"]) == 2 and record["schedule"]["epochs"] == 2
    assert (fold / "validation" / "summary.json").is_file()


def test_export_bundle_reloads_with_labels_and_record(pipeline: dict[str, Path]) -> None:
    from GASACore.bundle import load_model

    bundle = load_model(pipeline["bundle"])
    assert [label.name for label in bundle.labels] == ["spleen", "right kidney", "left kidney"]
    assert all(label.terminology is not None for label in bundle.labels)
    assert bundle.architecture.name == "gasa-unet"
    network = bundle.build_network()
    network.load_state_dict(bundle.load_fold(bundle.folds[0], network))
    meta = json.loads((pipeline["bundle"] / "model.json").read_text())
    training = meta["training"]
    assert training["recipe"]["variant"] == "gasa-unet" and training["recipe"]["schedule"]["epochs"] == 2
    assert training["folds"]["fold_all"]["training_time_s"] > 0
    assert training["folds"]["fold_all"]["validation"]["mean_dice"] is not None
    assert meta["folds"][0]["sha256"]


def test_bundle_segments_and_evaluates(pipeline: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("GASACore.pipeline")
    env = cli_env(pipeline["root"])
    image = pipeline["root"] / "raw" / DATASET / "imagesTr" / "tiny_000_0000.nii.gz"
    output = tmp_path / "pred" / "tiny_000.nii.gz"
    output.parent.mkdir()
    run_cli(
        [str(image), "-o", str(output), "-m", str(pipeline["bundle"]), "--device", "cpu", "--no-tta"],
        env,
        module="GASACore.cli",
    )
    assert output.is_file()
    reference = pipeline["root"] / "raw" / DATASET / "labelsTr"
    report = run_cli(["evaluate", str(output.parent), str(reference), "--labels", "btcv", "--no-plot"], env)
    assert "spleen" in report.lower() or "dice" in report.lower()
