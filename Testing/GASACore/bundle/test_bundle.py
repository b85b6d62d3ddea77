"""Model bundles: save / load round trip, SHA-256 verification, safe zips, fit checks, fold selection."""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

from GASACore.bundle import ArchitectureSpec, ModelSource, WeightFormat, load_model, save_bundle
from GASACore.errors import BundleIntegrityError, ModelError, UnsafeModelError
from GASACore.labels import BTCV_LABELS
from GASACore.network import GASABlockOptions, Topology, UNetPlan, build_network
from GASACore.preprocessing import IntensityProperties, PreprocessingConfig

PLAN = UNetPlan(
    patch_size=(8, 16, 16),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(4, 8, 16),
)
SPEC = ArchitectureSpec("gasa-unet", PLAN, 1, 14, {"heads": 5, "dim": 25})
PREPROCESSING = PreprocessingConfig(
    spacing=(5.0, 2.0, 2.0),
    patch_size=PLAN.patch_size,
    intensity_properties=(IntensityProperties(mean=60.0, std=80.0, percentile_00_5=-900.0, percentile_99_5=1200.0),),
)


def _weights(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_network("gasa-unet", plan=PLAN, num_input_channels=1, num_classes=14).state_dict()


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    save_bundle(
        tmp_path / "model",
        metadata={"name": "tiny", "version": "1.0", "description": "test", "license": "Apache-2.0"},
        architecture=SPEC,
        preprocessing=PREPROCESSING,
        labels=BTCV_LABELS,
        fold_weights={"fold_0": _weights(0), "fold_1": _weights(1)},
        training={"data": "none", "metrics": {"mean_dice": float("nan"), "liver": 0.9}},
    )
    return tmp_path / "model"


def test_round_trip(bundle_dir: Path) -> None:
    model = load_model(bundle_dir)
    assert model.name == "tiny" and model.source == "bundle"
    assert model.architecture == SPEC
    assert [f.name for f in model.folds] == ["fold_0", "fold_1"]
    assert model.labels == BTCV_LABELS
    network = model.build_network()
    state = model.load_fold(model.folds[1], network)
    expected = _weights(1)
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    meta = json.loads((bundle_dir / "model.json").read_text(), parse_constant=pytest.fail)  # strict JSON
    assert meta["schema_version"] == 1 and len(meta["folds"][0]["sha256"]) == 64
    assert meta["training"]["metrics"] == {"mean_dice": None, "liver": 0.9}
    umask = os.umask(0)
    os.umask(umask)
    assert bundle_dir.stat().st_mode & 0o777 == 0o777 & ~umask, "permissions of any new folder, not mkdtemp's 0700"
    assert meta["labels"][0]["terminology"]["type"]["value"] == "78961009"


def test_fold_selection(bundle_dir: Path) -> None:
    assert [f.name for f in load_model(bundle_dir, folds=[1]).folds] == ["fold_1"]
    assert [f.name for f in load_model(bundle_dir, folds=["fold_0"]).folds] == ["fold_0"]
    with pytest.raises(ModelError, match=r"fold_7.*fold_0"):
        load_model(bundle_dir, folds=[7])


def test_changed_byte_is_refused_before_loading(bundle_dir: Path) -> None:
    weights = bundle_dir / "fold_1.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=r"fold_1\.safetensors.*modified"):
        load_model(bundle_dir)


def test_missing_weight_file(bundle_dir: Path) -> None:
    (bundle_dir / "fold_0.safetensors").unlink()
    with pytest.raises(BundleIntegrityError, match="missing"):
        load_model(bundle_dir)


def test_zip_bundle_and_path_traversal(bundle_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in bundle_dir.iterdir():
            zf.write(file, f"model/{file.name}")
    assert load_model(archive).name == "tiny"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
        zf.writestr("model.json", "{}")
    with pytest.raises(ModelError, match="unsafe member"):
        load_model(evil)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"model\.json"):
        load_model(tmp_path / "empty")
    text = tmp_path / "model.zip"
    text.write_text("not a zip")
    with pytest.raises(ModelError, match="expected a model bundle"):
        load_model(text)


def test_malformed_model_json(bundle_dir: Path) -> None:
    meta = json.loads((bundle_dir / "model.json").read_text())
    meta["architecture"]["name"] = "unetr"
    (bundle_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="unetr"):
        load_model(bundle_dir)
    meta["architecture"]["name"] = "gasa-unet"
    meta["schema_version"] = 99
    (bundle_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="schema_version"):
        load_model(bundle_dir)


def test_weights_must_fit_architecture(tmp_path: Path) -> None:
    other = build_network("nnunet", plan=PLAN, num_input_channels=1, num_classes=14).state_dict()
    with pytest.raises(ModelError, match=r"missing.*gasa|wrong shapes"):
        save_bundle(
            tmp_path / "bad",
            metadata={"name": "bad"},
            architecture=SPEC,
            preprocessing=PREPROCESSING,
            labels=BTCV_LABELS,
            fold_weights={"fold_0": other},
        )
    assert not any(tmp_path.iterdir()), "a failed save leaves nothing behind"


def test_refuses_to_overwrite(bundle_dir: Path) -> None:
    with pytest.raises(ModelError, match="overwrite"):
        save_bundle(
            bundle_dir,
            metadata={"name": "again"},
            architecture=SPEC,
            preprocessing=PREPROCESSING,
            labels=BTCV_LABELS,
            fold_weights={"fold_0": _weights(0)},
        )
    assert load_model(bundle_dir).name == "tiny"


class _Payload:
    """Stands for arbitrary pickled code: a checkpoint holding it must be refused."""

    def __reduce__(self):
        return (print, ("this would run",))


def test_nnunet_checkpoint_with_code_is_refused(tmp_path: Path) -> None:
    from GASACore.bundle.weights import load_nnunet_checkpoint

    path = tmp_path / "checkpoint_final.pth"
    torch.save({"network_weights": {"w": torch.zeros(1)}, "extra": _Payload()}, path)
    with pytest.raises(UnsafeModelError, match=r"contains Python objects \(builtins\.print\) that GASASegmenter never"):
        load_nnunet_checkpoint(path)


def test_placeholder_preprocessing_is_refused_at_save(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not a valid pre-processing configuration.*schema_version must be 1"):
        save_bundle(
            tmp_path / "bad",
            metadata={"name": "bad"},
            architecture=SPEC,
            preprocessing={"placeholder": True},
            labels=BTCV_LABELS,
            fold_weights={"fold_0": _weights(0)},
        )
    assert not any(tmp_path.iterdir())


def test_preprocessing_json_is_validated_and_typed(bundle_dir: Path, tmp_path: Path) -> None:
    model = load_model(bundle_dir)
    assert isinstance(model.preprocessing, PreprocessingConfig) and model.preprocessing == PREPROCESSING
    assert model.folds[0].file_format is WeightFormat.SAFETENSORS and model.source is ModelSource.BUNDLE
    copy = save_bundle(
        tmp_path / "from-json",
        metadata={"name": "json"},
        architecture=SPEC,
        preprocessing=PREPROCESSING.to_json(),  # its JSON is accepted too, and validated
        labels=BTCV_LABELS,
        fold_weights={"fold_0": _weights(0)},
    )
    assert copy.preprocessing == PREPROCESSING


def test_patch_size_must_agree_on_save_and_on_load(bundle_dir: Path, tmp_path: Path) -> None:
    other_patch = dataclasses.replace(PREPROCESSING, patch_size=(8, 32, 32))
    with pytest.raises(ModelError, match=r"planned for patch size \(8, 16, 16\).*pre-processing says \(8, 32, 32\)"):
        save_bundle(
            tmp_path / "bad",
            metadata={"name": "bad"},
            architecture=SPEC,
            preprocessing=other_patch,
            labels=BTCV_LABELS,
            fold_weights={"fold_0": _weights(0)},
        )
    meta = json.loads((bundle_dir / "model.json").read_text())
    meta["preprocessing"]["patch_size"] = [8, 16, 32]
    (bundle_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"planned for patch size \(8, 16, 16\).*says \(8, 16, 32\)"):
        load_model(bundle_dir)


def test_selecting_folds_keeps_everything_else(bundle_dir: Path) -> None:
    model = load_model(bundle_dir)
    one = model.select_folds(["fold_1"])
    assert [f.name for f in one.folds] == ["fold_1"]
    assert dataclasses.replace(one, folds=model.folds) == model
    with pytest.raises(ModelError, match=r"\['fold_all'\] are not in model tiny"):
        model.select_folds(["all"])  # "all" names nnU-Net's fold_all folder, not every fold


def test_block_options_are_typed_and_validated() -> None:
    assert SPEC.block_options == GASABlockOptions(dim=25, heads=5)
    assert ArchitectureSpec("nnunet", PLAN, 1, 3).block_options is None
    with pytest.raises(ModelError, match="has no block"):
        ArchitectureSpec("nnunet", PLAN, 1, 3, {"dim": 25})
    with pytest.raises(ModelError, match="multiple of heads"):
        ArchitectureSpec("gasa-unet", PLAN, 1, 3, {"dim": 25, "heads": 4})
    with pytest.raises(ModelError, match=r"unknown GASABlockOptions keys \['pe'\]"):
        ArchitectureSpec("gasa-unet", PLAN, 1, 3, {"pe": "voxels"})


def test_shipped_demo_bundle_loads() -> None:
    demo = load_model(Path(__file__).resolve().parents[3] / "Resources" / "models" / "gasa-demo-btcv")
    assert demo.architecture.name == "gasa-unet" and demo.patch_size == demo.preprocessing.patch_size
    assert [f.name for f in demo.folds] == ["fold_all"] and len(demo.labels) == 13
    assert demo.build_network().gasa.spatial_size == demo.architecture.plan.bottleneck_size


def test_backbone_bundles_need_their_own_topology(tmp_path: Path) -> None:
    """A V-Net bundle describes the V-Net that is built: its own strides and channels at the bundle's patch."""
    plan = Topology.MONAI_VNET.plan_for((16, 32, 32))
    spec = ArchitectureSpec("vnet-gasa", plan, 1, 3, {"dim": 10, "heads": 2})
    assert spec.build_network().gasa.out_channels == 256 + 30
    assert ArchitectureSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ModelError, match=r"model architecture: vnet-gasa \(monai-vnet\) has a fixed topology"):
        ArchitectureSpec("vnet-gasa", dataclasses.replace(PLAN, patch_size=(16, 32, 32)), 1, 3)  # a U-Net plan
    with pytest.raises(ModelError, match=r"unetr \(monai-unetr\) needs a patch size that is a multiple of"):
        ArchitectureSpec.from_json({**spec.to_json(), "name": "unetr", "block_options": {},
                                    "plan": {**plan.to_dict(), "patch_size": [16, 32, 40]}})  # fmt: skip
