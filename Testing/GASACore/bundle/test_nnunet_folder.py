"""nnU-Net v2 results folders as published models come: KiTS23 regions, an ignore label, checkpoint_best.pth,
fold_all, ResEnc plans. Each folder is real (plans, dataset.json, checkpoints GASACore and nnU-Net both load)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from nnunet_fixture import TEST_PLAN, make_plans

from GASACore.bundle import describe_model, load_model
from GASACore.errors import ModelError
from GASACore.network import build_network, nnunet_architecture

PROPS = {"mean": 40.0, "std": 60.0, "percentile_00_5": -100.0, "percentile_99_5": 300.0, "min": -200.0,
         "max": 500.0, "median": 40.0}  # fmt: skip
#: dataset.json labels of nnU-Net's own KiTS23 conversion (Dataset220_KiTS2023).
KITS_LABELS = {"background": 0, "kidney": [1, 2, 3], "masses": [2, 3], "tumor": 2}
RESENC = dataclasses.replace(TEST_PLAN, n_blocks_per_stage=(1, 3, 4, 6))


def write_folder(
    root: Path,
    labels: dict[str, Any],
    outputs: int,
    *,
    network: str = "nnunet",
    checkpoints: dict[str, tuple[str, ...]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """``root/Dataset991_Test/nnUNetTrainer__<plans>__3d_fullres`` with one checkpoint file per fold and name."""
    plan = RESENC if network == "nnunet-resenc" else TEST_PLAN
    plans_name = "nnUNetResEncUNetLPlans" if network == "nnunet-resenc" else "nnUNetPlans"
    folder = root / "Dataset991_Test" / f"nnUNetTrainer__{plans_name}__3d_fullres"
    plans = make_plans((3.0, 3.0, 3.0), PROPS, plans_name)
    plans["configurations"]["3d_fullres"]["architecture"] = nnunet_architecture(network, plan)
    folder.mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps(plans))
    dataset = {"channel_names": {"0": "CT"}, "labels": labels, "file_ending": ".nii.gz", **(extra or {})}
    (folder / "dataset.json").write_text(json.dumps(dataset))
    torch.manual_seed(0)
    weights = build_network(network, plan=plan, num_input_channels=1, num_classes=outputs).state_dict()
    for fold, names in (checkpoints or {"fold_0": ("checkpoint_final.pth",)}).items():
        (folder / fold).mkdir()
        for name in names:
            torch.save(
                {"network_weights": weights, "inference_allowed_mirroring_axes": (0, 1, 2)}, folder / fold / name
            )
    return folder


def test_kits23_regions_give_kidney_tumour_and_cyst_with_terminology(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, KITS_LABELS, 3, extra={"regions_class_order": [1, 3, 2]})
    model = load_model(folder)
    assert [(label.value, label.name) for label in model.labels] == [(1, "kidney"), (2, "kidney tumor"),
                                                                      (3, "kidney cyst")]  # fmt: skip
    assert [label.terminology.type.meaning for label in model.labels] == ["Kidney", "Neoplasm", "Cyst"]
    assert model.architecture.num_classes == 3 and model.regions_class_order == (1, 3, 2)
    assert model.regions == ((1, 2, 3), (2, 3), (2,))
    model.load_fold(model.folds[0])  # three sigmoid heads: the weights fit
    regions = describe_model(folder)["regions"]
    assert [(r["channel"], r["value"], r["name"], r["region"]) for r in regions] == [
        (0, 1, "kidney", [1, 2, 3]),
        (1, 3, "kidney cyst", [2, 3]),
        (2, 2, "kidney tumor", [2]),
    ]


def test_unknown_regions_keep_their_dataset_names(tmp_path: Path) -> None:
    labels = {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3}
    model = load_model(write_folder(tmp_path, labels, 3, extra={"regions_class_order": [1, 2, 3]}))
    assert [(label.value, label.name) for label in model.labels] == [(1, "whole tumor"), (2, "tumor core"),
                                                                      (3, "enhancing tumor")]  # fmt: skip
    assert all(label.terminology is None for label in model.labels)


def test_regions_without_a_class_order_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"defines 3 regions, so 'regions_class_order' must list 3 label values"):
        load_model(write_folder(tmp_path, KITS_LABELS, 3))


def test_the_ignore_label_is_no_output(tmp_path: Path) -> None:
    labels = {"background": 0, "liver": 1, "spleen": 2, "kidney": 3, "ignore": 4}
    model = load_model(write_folder(tmp_path, labels, 4))
    assert [label.name for label in model.labels] == ["liver", "spleen", "kidney"]
    assert model.architecture.num_classes == 4  # background + 3, as nnU-Net's LabelManager counts
    model.load_fold(model.folds[0])
    assert model.metadata["nnunet"]["ignore_label"] == 4
    described = describe_model(model.root)
    assert [label["value"] for label in described["labels"]] == [1, 2, 3]
    region_folder = write_folder(
        tmp_path / "regions", {**KITS_LABELS, "ignore": 4}, 3, extra={"regions_class_order": [1, 3, 2]}
    )
    assert len(load_model(region_folder).labels) == 3
    below = write_folder(tmp_path / "below", {"background": 0, "liver": 1, "ignore": 2, "spleen": 3}, 3)
    with pytest.raises(ModelError, match=r"'ignore' label must be the highest label value \(4, .*got 2"):
        load_model(below)


def test_checkpoint_best_is_used_where_there_is_no_final_and_can_be_chosen(tmp_path: Path) -> None:
    both = ("checkpoint_final.pth", "checkpoint_best.pth")
    folds = {f"fold_{i}": both for i in range(4)} | {"fold_4": ("checkpoint_best.pth",)}
    folder = write_folder(tmp_path, {"background": 0, "kidney": 1}, 2, checkpoints=folds)
    default = load_model(folder)
    assert [f.path.name for f in default.folds] == ["checkpoint_final.pth"] * 4 + ["checkpoint_best.pth"]
    assert {f.path.name for f in load_model(folder, checkpoint="best").folds} == {"checkpoint_best.pth"}
    with pytest.raises(ModelError, match=r"folds \['fold_4'\] .* have no checkpoint_final.pth"):
        load_model(folder, checkpoint="final")
    chosen = load_model(folder, checkpoint="final", folds=[1, "fold_0"])  # fold_4's lack does not matter then
    assert [(f.name, f.path.name) for f in chosen.folds] == [("fold_1", "checkpoint_final.pth"),
                                                             ("fold_0", "checkpoint_final.pth")]  # fmt: skip
    with pytest.raises(ModelError, match=r"checkpoint must be one of .*'best'.*got 'latest'"):
        load_model(folder, checkpoint="latest")


def test_fold_all_and_resenc_plans(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path, {"background": 0, "kidney": 1, "renal mass": 2}, 3, network="nnunet-resenc",
        checkpoints={"fold_all": ("checkpoint_best.pth",)},
    )  # fmt: skip
    model = load_model(folder, folds=["all"])
    assert model.architecture.name == "nnunet-resenc" and model.architecture.plan.n_blocks_per_stage == (1, 3, 4, 6)
    assert [f.name for f in model.folds] == ["fold_all"]
    network = model.build_network()
    network.load_state_dict(model.load_fold(model.folds[0], network))
    assert model.metadata["nnunet"]["plans_name"] == "nnUNetResEncUNetLPlans"
    assert model.metadata["nnunet"]["checkpoints"] == ["checkpoint_best.pth"]
    assert describe_model(folder)["folds"] == ["fold_all"]


def test_a_fold_without_checkpoints_is_skipped_and_none_is_an_error(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, {"background": 0, "kidney": 1}, 2)
    (folder / "fold_1").mkdir()  # an interrupted training leaves an empty fold
    assert [f.name for f in load_model(folder).folds] == ["fold_0"]
    shutil.rmtree(folder / "fold_0")
    with pytest.raises(ModelError, match=r"no fold_\*/checkpoint_final.pth \(or checkpoint_best.pth\)"):
        load_model(folder)
