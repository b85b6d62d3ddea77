"""KiTS23 end to end on CPU: a region-based ResEnc-L nnU-Net model goes convert -> plan -> train -> export ->
segment -> evaluate, and GASA-L is fine-tuned from it as from a published model (``--init-from``).

The "published" model is the trained results folder laid out as the DIAG kidney model is: trainer
``nnUNetTrainer``, ResEnc-L plans, ``checkpoint_best.pth`` only, here in ``fold_all`` (the KiTS23 2nd place's).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from GASACore import SegmentOptions, segment
from GASACore.bundle.weights import read_nnunet_checkpoint
from GASACore.network import GASABlockOptions
from Testing.train.kits23_support import KITS_DATASET, planned_kits23
from Testing.train.test_pipeline_support import TRAIN_FAST, cli_env, run_cli

__all__ = ["planned_kits23"]

TRAINED = "GASATrainer__nnUNetResEncUNetLPlans__3d_fullres"
PUBLISHED = "nnUNetTrainer__nnUNetResEncUNetLPlans__3d_fullres"
FINE_TUNED = "GASATrainer__nnUNetResEncUNetLPlans_from992_gasa-l__3d_fullres"
KITS_NAMES = [(1, "kidney", "64033007"), (2, "kidney tumor", "108369006"), (3, "kidney cyst", "367643001")]
TINY_GASA = GASABlockOptions(dim=8, heads=2)


@pytest.fixture(scope="module")
def kits(planned_kits23: Path) -> dict[str, Path]:
    root = planned_kits23
    env = cli_env(root)
    run_cli(["train", "992", "--variant", "nnunet", "--plans-name", "nnUNetResEncUNetLPlans", "--fold", "all",
             "--epochs", "1", "--no-validation", *TRAIN_FAST], env)  # fmt: skip
    results = root / "results" / KITS_DATASET / TRAINED
    published = root / "published" / KITS_DATASET / PUBLISHED
    (published / "fold_all").mkdir(parents=True)
    for name in ("plans.json", "dataset.json"):
        shutil.copy(results / name, published / name)
    checkpoint = read_nnunet_checkpoint(results / "fold_all" / "checkpoint_best.pth")
    torch.save({**checkpoint, "trainer_name": "nnUNetTrainer"}, published / "fold_all" / "checkpoint_best.pth")
    run_cli(["export", str(results), str(root / "bundle"), "--label-set", "kits23", "--checkpoint", "best"], env)
    return {"root": root, "results": results, "published": published, "bundle": root / "bundle"}


def _labels(model) -> list[tuple[int, str, str]]:
    return [(label.value, label.name, label.terminology.type.value) for label in model.labels]


def test_region_model_exports_kidney_tumour_and_cyst(kits: dict[str, Path]) -> None:
    from GASACore.bundle import load_model

    meta = json.loads((kits["bundle"] / "model.json").read_text())
    assert meta["inference"]["regions"] == [[1, 2, 3], [2, 3], [2]]  # dataset.json's kidney, masses, tumor
    assert meta["inference"]["regions_class_order"] == [1, 3, 2]
    assert meta["architecture"]["name"] == "nnunet-resenc" and meta["architecture"]["num_classes"] == 3
    assert meta["training"]["folds"]["fold_all"]["checkpoint"] == "checkpoint_best.pth"
    bundle, published = load_model(kits["bundle"]), load_model(kits["published"])
    assert _labels(bundle) == _labels(published) == KITS_NAMES
    assert published.folds[0].path.name == "checkpoint_best.pth" and published.regions == bundle.regions
    plans = json.loads((kits["published"] / "plans.json").read_text())["configurations"]["3d_fullres"]
    assert plans["architecture"]["network_class_name"].endswith("ResidualEncoderUNet")  # nnU-Net's ResEnc-L planner
    assert (
        list(bundle.architecture.plan.n_blocks_per_stage) == plans["architecture"]["arch_kwargs"]["n_blocks_per_stage"]
    )


def _nnunet_prediction(model: Path, image: Path) -> tuple[np.ndarray, np.ndarray]:
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(use_mirroring=False, perform_everything_on_device=False, device=torch.device("cpu"),
                                verbose=False, allow_tqdm=False)  # fmt: skip
    predictor.initialize_from_trained_model_folder(
        str(model), use_folds=("all",), checkpoint_name="checkpoint_best.pth"
    )
    array, properties = SimpleITKIO().read_images([str(image)])
    labels, probabilities = predictor.predict_single_npy_array(array, properties, None, None, True)
    return np.asarray(labels), np.asarray(probabilities)


def test_region_model_segments_as_nnunet_does_and_evaluates(kits: dict[str, Path], tmp_path: Path) -> None:
    env = cli_env(kits["root"])
    raw = kits["root"] / "raw" / KITS_DATASET
    image = raw / "imagesTr" / "case_00000_0000.nii.gz"
    output = tmp_path / "pred" / "case_00000.nii.gz"
    output.parent.mkdir()
    run_cli([str(image), "-o", str(output), "-m", str(kits["bundle"]), "--device", "cpu", "--no-tta"], env,
            module="GASACore.cli")  # fmt: skip
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(output)))
    from_folder = segment(image, kits["published"], options=SegmentOptions(device="cpu", tta=False)).labels
    assert np.array_equal(ours, from_folder)  # the bundle and the nnU-Net folder it came from
    assert set(np.unique(ours).tolist()) <= {0, 1, 2, 3}
    # nnU-Net's sigmoid regions -> labels. It sums window logits in float16, which rounds the logits of this
    # 2-iteration model, most of them near 0 (sigmoid 0.5) and at the window's border, to exactly 0: compare
    # where its probabilities are not at the boundary (most voxels); there the labels must be the same.
    theirs, probabilities = _nnunet_prediction(kits["published"], image)
    decisive = (np.abs(probabilities - 0.5) > 0.01).all(axis=0)
    assert ours.shape == theirs.shape and decisive.mean() > 0.5 and (ours == theirs)[decisive].mean() >= 0.999
    assert (ours == theirs).mean() > 0.95
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copy(raw / "labelsTr" / "case_00000.nii.gz", reference)
    run_cli(["evaluate", str(output.parent), str(reference), "--labels", "kits23", "--out",
             str(tmp_path / "report"), "--no-plot"], env)  # fmt: skip
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [c["name"] for c in report["classes"]] == ["kidney and masses", "masses", "tumor"]
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(reference / "case_00000.nii.gz")))
    for evaluated in report["classes"]:
        pred, ref = np.isin(ours, evaluated["values"]), np.isin(truth, evaluated["values"])
        dice = 2 * (pred & ref).sum() / (pred.sum() + ref.sum()) if pred.sum() + ref.sum() else 1.0
        assert math.isclose(report["cases"][0]["dice"][evaluated["name"]], dice, abs_tol=1e-9)


@pytest.fixture(scope="module")
def fine_tuned(kits: dict[str, Path]) -> Path:
    run_cli(["train", "992", "--variant", "gasa-l", "--init-from", str(kits["published"]), "--fold", "all",
             "--epochs", "1", "--no-validation", "-j", "1", "--gasa-dim", "8", "--gasa-heads", "2", *TRAIN_FAST],
            cli_env(kits["root"]))  # fmt: skip
    return kits["root"] / "results" / KITS_DATASET / FINE_TUNED


def test_gasa_l_fine_tunes_from_the_published_model(kits: dict[str, Path], fine_tuned: Path) -> None:
    fold = fine_tuned / "fold_all"
    assert (fold / "checkpoint_final.pth").is_file()
    epochs = [json.loads(line) for line in (fold / "epochs.jsonl").read_text().splitlines()]
    assert len(epochs) == 1 and math.isfinite(epochs[0]["train_loss"]) and math.isfinite(epochs[0]["val_loss"])
    base = json.loads((fold / "gasa_training.json").read_text())["init_from"]
    assert (base["name"], base["fold"], base["checkpoint"]) == (PUBLISHED, "fold_all", "checkpoint_best.pth")
    assert base["licence"] == "CC BY-NC-SA 4.0" and base["heads"] == "copied"  # the converter's dataset.json
    assert base["weights"]["zero_initialised"] == ["decoder.transpconvs.0.weight[16:]"]
    preprocessed = kits["root"] / "preprocessed" / KITS_DATASET
    plans = json.loads((preprocessed / "nnUNetResEncUNetLPlans_from992_gasa-l.json").read_text())
    config = plans["configurations"]["3d_fullres"]
    assert config["data_identifier"] == "nnUNetResEncUNetLPlans_from992_3d_fullres"
    assert any((preprocessed / config["data_identifier"]).iterdir())  # pre-processed with the base's plans
    published = json.loads((kits["published"] / "plans.json").read_text())["configurations"]["3d_fullres"]
    assert config["patch_size"] == published["patch_size"] and config["spacing"] == published["spacing"]
    assert (
        config["architecture"]["arch_kwargs"]["n_blocks_per_stage"]
        == published["architecture"]["arch_kwargs"]["n_blocks_per_stage"]
    )  # the base's backbone, not the paper's 3..3,5


def test_fine_tuning_starts_at_the_published_models_output(kits: dict[str, Path], fine_tuned: Path) -> None:
    """The network the training started from (base weights into the written GASA plans) = the base, exactly."""
    from GASACore.bundle import load_nnunet_checkpoint
    from GASACore.preprocessing import PreprocessingConfig, preprocess
    from train.planning import build_network_from_plans
    from train.training import transfer_base_weights

    plans = json.loads((kits["published"] / "plans.json").read_text())
    dataset = json.loads((kits["published"] / "dataset.json").read_text())
    gasa_plans = json.loads((fine_tuned / "plans.json").read_text())
    state = load_nnunet_checkpoint(kits["published"] / "fold_all" / "checkpoint_best.pth")
    base = build_network_from_plans(plans, dataset, deep_supervision=True)
    base.load_state_dict(state)
    gasa = build_network_from_plans(gasa_plans, dataset, deep_supervision=True)
    transfer_base_weights(gasa, state)
    ct = sitk.ReadImage(str(kits["root"] / "raw" / KITS_DATASET / "imagesTr" / "case_00001_0000.nii.gz"))
    data, _ = preprocess(sitk.GetArrayFromImage(ct)[None], ct.GetSpacing()[::-1],
                         PreprocessingConfig.from_nnunet(plans, "3d_fullres", dataset))  # fmt: skip
    patch = plans["configurations"]["3d_fullres"]["patch_size"]
    window = torch.zeros(1, 1, *patch)
    crop = tuple(slice(0, min(s, p)) for s, p in zip(data.shape[1:], patch, strict=True))
    window[(0, 0, *crop)] = torch.from_numpy(data[(0, *crop)])
    with torch.no_grad():
        theirs, ours = base.eval()(window), gasa.eval()(window)
    assert len(ours) == len(theirs) > 1 and all(torch.equal(a, b) for a, b in zip(theirs, ours, strict=True))


def test_a_fine_tuned_fold_is_not_overwritten(kits: dict[str, Path], fine_tuned: Path, monkeypatch) -> None:
    from train.training import InitFrom, Schedule, run_gasa_training

    for name, value in cli_env(kits["root"]).items():
        if name.startswith("nnUNet_"):
            monkeypatch.setenv(name, value)
    before = (fine_tuned / "fold_all" / "checkpoint_final.pth").read_bytes()
    with pytest.raises(ValueError, match=r"already holds a training .*pass --continue to resume it"):
        run_gasa_training(992, variant="gasa-l", fold="all", device="cpu", schedule=Schedule(1, 1, 1),
                          init_from=InitFrom(kits["published"], options=TINY_GASA))  # fmt: skip
    assert (fine_tuned / "fold_all" / "checkpoint_final.pth").read_bytes() == before
    with pytest.raises(ValueError, match=r"variant must be one of \['gasa-unet', 'gasa-l'\], got 'nnunet'"):
        run_gasa_training(992, variant="nnunet", fold="all", device="cpu", init_from=InitFrom(kits["published"]))


def test_export_records_the_base_model_and_its_licence(kits: dict[str, Path], fine_tuned: Path) -> None:
    from GASACore.bundle import load_model

    target = kits["root"] / "bundle_gasa_l"
    run_cli(["export", str(fine_tuned), str(target), "--label-set", "kits23", "--base-license",
             "CC BY-NC-SA 4.0 (research only)"], cli_env(kits["root"]))  # fmt: skip
    meta = json.loads((target / "model.json").read_text())
    base = meta["training"]["base_model"]
    assert (base["name"], base["trainer"], base["plans_name"], base["dataset_name"]) == (
        PUBLISHED, "nnUNetTrainer", "nnUNetResEncUNetLPlans", KITS_DATASET
    )  # fmt: skip
    assert (base["licence"], base["licence_source"]) == ("CC BY-NC-SA 4.0 (research only)", "--base-license")
    assert f"Base model {KITS_DATASET}/{PUBLISHED}: CC BY-NC-SA 4.0 (research only)" in meta["license"]
    assert f"Started from the nnU-Net v2 model {KITS_DATASET}/{PUBLISHED}" in meta["description"]
    bundle = load_model(target)
    assert bundle.architecture.name == "gasa-l" and _labels(bundle) == KITS_NAMES
    network = bundle.build_network()
    network.load_state_dict(bundle.load_fold(bundle.folds[0], network))
