"""End to end on a tiny real-CT data set: convert -> plan -> train -> continue -> export -> reload -> segment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from Testing.train.test_pipeline_support import DATASET, TRAIN_FAST, cli_env, planned_tiny, run_cli

__all__ = ["planned_tiny"]  # the session fixture, shared with test_ddp.py

RESULTS = "GASATrainer__nnUNetPlans_gasa-unet__3d_fullres"


@pytest.fixture(scope="module")
def pipeline(planned_tiny: Path) -> dict[str, Path]:
    root = planned_tiny
    env = cli_env(root)
    common = ["train", "991", "--variant", "gasa-unet", "--fold", "all", *TRAIN_FAST]
    recipe = ["--optimizer", "adamw", "--lr", "3e-3", "--no-mirroring", "--contrast-phase", "1"]
    run_cli([*common, "--epochs", "1", "--no-validation", *recipe], env)
    run_cli([*common, "--epochs", "2", "--continue"], env)  # keeps the recorded recipe
    results = root / "results" / DATASET / RESULTS
    run_cli(["export", str(results), str(root / "bundle"), "--label-set", "btcv", "--name", "tiny-test"], env)
    return {"root": root, "results": results, "bundle": root / "bundle"}


def test_plan_writes_trainable_gasa_plans(planned_tiny: Path) -> None:
    folder = planned_tiny / "preprocessed" / DATASET
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
    assert record["recipe"]["optimizer"] == "adamw" and record["initial_lr"] == 3e-3
    assert record["recipe"]["mirror"] is False and record["recipe"]["p_contrast_phase"] == 1
    checkpoint = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=True)
    assert checkpoint["optimizer_state"]["param_groups"][0]["betas"] == (0.9, 0.999)  # AdamW, resumed as AdamW
    assert (fold / "validation" / "summary.json").is_file()


def test_export_bundle_reloads_with_labels_and_record(pipeline: dict[str, Path]) -> None:
    from GASACore.bundle import load_model

    bundle = load_model(pipeline["bundle"])
    assert [label.name for label in bundle.labels] == ["spleen", "right kidney", "left kidney"]
    assert all(label.terminology is not None for label in bundle.labels)
    assert bundle.architecture.name == "gasa-unet"
    assert bundle.mirror_axes == ()  # trained with --no-mirroring: no mirror TTA either
    network = bundle.build_network()
    network.load_state_dict(bundle.load_fold(bundle.folds[0], network))
    meta = json.loads((pipeline["bundle"] / "model.json").read_text())
    training = meta["training"]
    assert training["recipe"]["variant"] == "gasa-unet" and training["recipe"]["schedule"]["epochs"] == 2
    assert training["folds"]["fold_all"]["training_time_s"] > 0
    assert training["folds"]["fold_all"]["validation"]["mean_dice"] is not None
    assert meta["folds"][0]["sha256"]


def test_bundle_segments_and_evaluates(pipeline: dict[str, Path], tmp_path: Path) -> None:
    import nibabel as nib
    import numpy as np

    env = cli_env(pipeline["root"])
    image = pipeline["root"] / "raw" / DATASET / "imagesTr" / "tiny_000_0000.nii.gz"
    output = tmp_path / "pred" / "tiny_000.nii.gz"
    output.parent.mkdir()
    run_cli([str(image), "-o", str(output), "-m", str(pipeline["bundle"]), "--device", "cpu", "--no-tta"], env,
            module="GASACore.cli")  # fmt: skip
    reference = tmp_path / "ref"
    reference.mkdir()
    shutil.copy(pipeline["root"] / "raw" / DATASET / "labelsTr" / "tiny_000.nii.gz", reference)
    report = run_cli(["evaluate", str(output.parent), str(reference), "--labels", "btcv", "--no-plot",
                      "--out", str(tmp_path / "eval")], env)  # fmt: skip
    # The label map lies on the input's grid; the evaluation's Dice is the Dice of the two maps (an oracle
    # computed here), for every class the tiny data set holds.
    predicted, truth, ct = (nib.load(p) for p in (output, reference / "tiny_000.nii.gz", image))
    assert predicted.shape == ct.shape and np.allclose(predicted.affine, ct.affine, atol=1e-4)
    labels, expected = np.asarray(predicted.dataobj), np.asarray(truth.dataobj)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    (case,) = metrics["cases"]
    for value, name in ((1, "spleen"), (2, "right kidney"), (3, "left kidney")):
        overlap = 2.0 * np.sum((labels == value) & (expected == value))
        oracle = overlap / (np.sum(labels == value) + np.sum(expected == value))
        assert case["dice"][name] == pytest.approx(oracle, abs=1e-9), name
        assert 0.0 <= case["nsd"][name] <= 1.0, name
        assert name in report
