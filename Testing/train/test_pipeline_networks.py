"""Every registered network through gasa-train on the tiny real-CT data set: plan, train, and one bundle that segments.

The baselines (CBAM, AT, MAT) and GASA on MONAI's V-Net and UNETR are planned at a 32^3 patch (``--patch-size``:
nnU-Net's topology, bottleneck 8^3, cubic as MAT needs; the backbones' own topology, bottleneck 2^3) and trained for
two iterations each. nnMamba is refused on this CPU machine, at planning, by the one rule in
``GASACore.network.nnmamba``; its trainer still takes its learning rate and no deep supervision from the registry.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from GASACore.network import NETWORKS, GASABlockOptions
from Testing.train.test_pipeline_support import DATASET, SMALL_PLAN, TRAIN_FAST, cli_env, planned_tiny, run_cli

__all__ = ["planned_tiny"]

PATCH = "nnUNetPlans_patch32x32x32"
NETWORKS_ON_CPU = ("nnunet-cbam", "nnunet-at", "nnunet-mat", "vnet-gasa", "unetr-gasa")
BLOCK_KEYS = {
    "nnunet-cbam": "cbam.",
    "nnunet-at": "at.",
    "nnunet-mat": "mat.",
    "vnet-gasa": "gasa.",
    "unetr-gasa": "gasa.",
}


@pytest.fixture(scope="module")
def planned(planned_tiny: Path) -> Path:
    """``gasa-train plan`` of the tiny data set again (same nnU-Net plans), for the five networks at 32^3."""
    env = cli_env(planned_tiny)
    output = run_cli(["plan", "991", "--variants", *NETWORKS_ON_CPU, "--patch-size", "32", "32", "32", *SMALL_PLAN],
                     env)  # fmt: skip
    assert f"(train with --plans-name {PATCH})" in output
    return planned_tiny


def _train(root: Path, variant: str) -> Path:
    """Train ``variant`` for one epoch of two iterations (once per session); returns its fold folder.

    V-Net + GASA also runs nnU-Net's final validation (sliding window through nnU-Net's predictor).
    """
    fold = root / "results" / DATASET / f"GASATrainer__{PATCH}_{variant}__3d_fullres" / "fold_all"
    if not (fold / "checkpoint_final.pth").is_file():
        validation = [] if variant == "vnet-gasa" else ["--no-validation"]
        run_cli(["train", "991", "--variant", variant, "--plans-name", PATCH, "--fold", "all", "--epochs", "1",
                 *validation, *TRAIN_FAST], cli_env(root))  # fmt: skip
    return fold


def test_plans_of_every_network_at_the_patch(planned: Path) -> None:
    folder = planned / "preprocessed" / DATASET
    base = json.loads((folder / f"{PATCH}.json").read_text())
    assert base["gasa"]["plan"] == "patch32x32x32" and base["gasa"]["bottleneck_size"] == [8, 8, 8]
    for variant in NETWORKS_ON_CPU:
        plans = json.loads((folder / f"{PATCH}_{variant}.json").read_text())
        config = plans["configurations"]["3d_fullres"]
        assert config["patch_size"] == [32, 32, 32] and config["data_identifier"] == "nnUNetPlans_3d_fullres"
        assert config["architecture"]["network_class_name"] == NETWORKS[variant].plans_class_path
        assert plans["gasa"]["plan"] == "patch32x32x32" and plans["gasa"]["topology"] == NETWORKS[variant].topology
    gasa = json.loads((folder / f"{PATCH}_vnet-gasa.json").read_text())["configurations"]["3d_fullres"]
    assert gasa["architecture"]["arch_kwargs"]["gasa_dim"] == 8  # --gasa-dim of SMALL_PLAN
    assert gasa["architecture"]["arch_kwargs"]["strides"] == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]]


@pytest.mark.parametrize("variant", NETWORKS_ON_CPU)
def test_each_network_trains_two_iterations(planned: Path, variant: str) -> None:
    fold = _train(planned, variant)
    (epoch,) = [json.loads(line) for line in (fold / "epochs.jsonl").read_text().splitlines()]
    assert epoch["train_loss"] is not None and epoch["lr"] == pytest.approx(1e-2)
    debug = json.loads((fold / "debug.json").read_text())
    assert debug["enable_deep_supervision"] == str(NETWORKS[variant].deep_supervision)  # V-Net, UNETR: none
    record = json.loads((fold / "gasa_training.json").read_text())
    assert record["variant"] == variant and record["patch_size"] == [32, 32, 32]
    weights = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=True)["network_weights"]
    assert any(key.startswith(BLOCK_KEYS[variant]) for key in weights)


def test_a_vnet_gasa_bundle_loads_and_segments_in_gasacore(planned: Path, tmp_path: Path) -> None:
    import nibabel as nib
    import numpy as np

    from GASACore.bundle import load_model

    fold = _train(planned, "vnet-gasa")
    env = cli_env(planned)
    bundle_dir = tmp_path / "bundle"
    run_cli(["export", str(fold.parent), str(bundle_dir), "--label-set", "btcv", "--name", "tiny-vnet-gasa"], env)
    bundle = load_model(bundle_dir)
    assert bundle.architecture.name == "vnet-gasa" and bundle.patch_size == (32, 32, 32)
    assert bundle.architecture.plan == NETWORKS["vnet-gasa"].topology.plan_for((32, 32, 32))
    assert bundle.architecture.block_options == GASABlockOptions(dim=8, heads=2)
    training = json.loads((bundle_dir / "model.json").read_text())["training"]
    assert training["recipe"]["plan"] == "patch32x32x32" and training["recipe"]["variant"] == "vnet-gasa"
    assert training["folds"]["fold_all"]["validation"]["mean_dice"] is not None  # nnU-Net's validation ran
    image = planned / "raw" / DATASET / "imagesTr" / "tiny_000_0000.nii.gz"
    output = tmp_path / "tiny_000.nii.gz"
    run_cli([str(image), "-o", str(output), "-m", str(bundle_dir), "--device", "cpu", "--no-tta"], env,
            module="GASACore.cli")  # fmt: skip
    labels, ct = nib.load(output), nib.load(image)
    assert labels.shape == ct.shape and np.allclose(labels.affine, ct.affine, atol=1e-4)
    assert set(np.unique(np.asarray(labels.dataobj)).tolist()) <= {0, 1, 2, 3}


def test_nnmamba_is_refused_at_planning_and_its_trainer_takes_the_registrys_recipe(
    planned: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from train.planning import write_gasa_plans
    from train.training.trainers import GASATrainer

    folder = tmp_path / DATASET
    folder.mkdir()
    for name in (f"{PATCH}.json", "dataset.json"):
        shutil.copy(planned / "preprocessed" / DATASET / name, folder / name)
    with pytest.raises(RuntimeError, match=r"nnMamba needs the CUDA kernels of mamba_ssm.*pip install mamba-ssm"):
        write_gasa_plans(folder, base_plans_name=PATCH, variants=["nnmamba-gasa"])
    assert not (folder / f"{PATCH}_nnmamba-gasa.json").exists()  # nothing written for a network that cannot build
    written, _ = write_gasa_plans(folder, base_plans_name=PATCH, variants=["nnmamba-gasa"], verify=False)
    plans = json.loads(written["nnmamba-gasa"].read_text())
    assert plans["configurations"]["3d_fullres"]["patch_size"] == [32, 32, 32]  # 16-multiples: kept
    dataset = json.loads((folder / "dataset.json").read_text())
    plans["continue_training"] = False  # as train.training.launch passes it
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path))  # nnU-Net reads its folders when it uses them
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    trainer = GASATrainer(plans, "3d_fullres", 0, dataset, device=torch.device("cpu"))
    assert trainer.initial_lr == 1e-4 and trainer.recipe.initial_lr == 1e-4  # the paper keeps nnMamba's own
    assert trainer.enable_deep_supervision is False and trainer.recipe.optimizer == "sgd"


def test_the_paper_plan_is_written_next_to_nnunets(planned: Path, tmp_path: Path) -> None:
    from GASACore.network import PAPER_BTCV, architecture_from_nnunet
    from train.planning import write_base_plans, write_gasa_plans

    for name in ("nnUNetPlans.json", "dataset.json"):
        shutil.copy(planned / "preprocessed" / DATASET / name, tmp_path / name)
    base = write_base_plans(tmp_path, "nnUNetPlans", plan="paper-btcv")
    assert base == "nnUNetPlans_paper-btcv"
    written, parameters = write_gasa_plans(tmp_path, base_plans_name=base, variants=["gasa-unet"])
    nnunet = json.loads((tmp_path / "nnUNetPlans.json").read_text())["configurations"]["3d_fullres"]
    for path in (tmp_path / f"{base}.json", written["gasa-unet"]):
        plans = json.loads(path.read_text())
        config = plans["configurations"]["3d_fullres"]
        plan = architecture_from_nnunet(config).plan  # the paper's (its residual-block fields are GASA-L's)
        assert plan == dataclasses.replace(PAPER_BTCV, n_blocks_per_stage=(), n_conv_per_stage_decoder_resenc=())
        assert plans["gasa"]["plan"] == "paper-btcv"
        assert config["spacing"] == nnunet["spacing"] and config["data_identifier"] == nnunet["data_identifier"]
    # 4 outputs here (background + 3 organs), not the paper's 14: 10 fewer outputs of the five 1x1x1 heads
    # (nnU-Net builds one per decoder stage: 32 + 64 + 128 + 256 + 320 inputs and a bias each, 805 per output)
    assert parameters[base] == 30_758_214 - 10 * 805
    assert parameters[f"{base}_gasa-unet"] - parameters[base] == 1_058_891


@pytest.mark.slow
def test_paper_plan_end_to_end_records_it_in_the_bundle(planned: Path, tmp_path: Path) -> None:
    """``plan --plan paper-btcv`` -> one iteration at 48x192x192 on CPU (minutes) -> the bundle names the plan."""
    env = cli_env(planned)
    run_cli(["plan", "991", "--variants", "gasa-unet", "--plan", "paper-btcv", *SMALL_PLAN], env)
    run_cli(["train", "991", "--variant", "gasa-unet", "--plans-name", "nnUNetPlans_paper-btcv", "--fold", "all",
             "--epochs", "1", "--no-validation", "--device", "cpu", "--iterations", "1", "--val-iterations", "1",
             "--augmentation-workers", "0"], env, timeout=1800)  # fmt: skip
    results = planned / "results" / DATASET / "GASATrainer__nnUNetPlans_paper-btcv_gasa-unet__3d_fullres"
    run_cli(["export", str(results), str(tmp_path / "bundle"), "--label-set", "btcv"], env)
    meta = json.loads((tmp_path / "bundle" / "model.json").read_text())
    assert meta["training"]["recipe"]["plan"] == "paper-btcv"
    assert meta["architecture"]["plan"]["patch_size"] == [48, 192, 192]
