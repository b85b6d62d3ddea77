"""describe_model: every kind of model described in a process where torch cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bundle_helpers import zip_folder

from GASACore.bundle import describe_model, load_model, sha256_of
from GASACore.errors import ModelError
from GASACore.labels import terminology_entry

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "Resources" / "models" / "gasa-demo-btcv"

_DESCRIBE_WITHOUT_TORCH = """
import json, sys
sys.modules["torch"] = None  # any import of torch now raises ImportError
from GASACore.bundle import describe_model
print(json.dumps(describe_model(sys.argv[1])))
heavy = ("torch", "safetensors", "dynamic_network_architectures", "SimpleITK", "nibabel", "scipy")
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(heavy))
assert loaded == ["torch"], loaded  # torch only as the None placed above: a description is cheap
"""


def describe_without_torch(path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _DESCRIBE_WITHOUT_TORCH, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _check_against_loaded(description: dict[str, Any], path: Path) -> None:
    model = load_model(path)  # the full loader (torch), for comparison
    assert description["name"] == model.name
    assert description["architecture"] == model.architecture.name
    assert description["num_classes"] == model.architecture.num_classes
    assert description["network_patch_size"] == list(model.patch_size)
    assert description["folds"] == [fold.name for fold in model.folds]
    assert [label["value"] for label in description["labels"]] == [label.value for label in model.labels]
    for described, label in zip(description["labels"], model.labels, strict=True):
        assert described["name"] == label.name and described["color"] == list(label.color)
        assert described["terminology"] == (label.terminology.to_json() if label.terminology else None)
        assert described["terminology_entry"] == terminology_entry(label)


def test_demo_bundle_folder(tmp_path: Path) -> None:
    description = describe_without_torch(DEMO)
    _check_against_loaded(description, DEMO)
    meta = json.loads((DEMO / "model.json").read_text(encoding="utf-8"))
    assert description["format"] == "bundle-folder" and description["source"] == "bundle"
    assert description["version"] == meta["version"] and description["license"] == meta["license"]
    assert description["intended_use"] == meta["intended_use"]
    # The demo's pre-processing is 3 mm isotropic, so both axis orders agree; the tiny bundle tests the order.
    assert description["spacing"] == meta["preprocessing"]["spacing"][::-1]
    assert description["patch_size"] == meta["architecture"]["plan"]["patch_size"][::-1]
    assert description["block_options"] == meta["architecture"]["block_options"]
    assert len(description["labels"]) == 13 and description["regions"] is None
    liver = next(label for label in description["labels"] if label["name"] == "liver")
    assert liver["terminology_entry"].split("~")[2] == "SCT^10200004^Liver"
    assert description["mirror_axes"] == [] and description["orientation"] == "RAS"  # trained without mirroring


def test_zip_of_the_demo_bundle_describes_like_the_folder(tmp_path: Path) -> None:
    archive = zip_folder(DEMO, tmp_path / "gasa-demo-btcv.zip", inner="gasa-demo-btcv")
    home = tmp_path / "home"
    zipped = describe_without_torch(archive, {"GASA_HOME": str(home)})
    folder = describe_model(DEMO)
    assert zipped["format"] == "bundle-zip" and zipped["path"] == str(archive)
    assert zipped["folder"] == str(home / "cache" / "bundles" / sha256_of(archive) / "gasa-demo-btcv")
    different = {"path", "format", "folder"}
    assert {k: v for k, v in zipped.items() if k not in different} == {
        k: v for k, v in folder.items() if k not in different
    }


def test_zipped_bundle_is_described_from_the_cache(tiny_bundle: Path, tiny_bundle_zip: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    description = describe_without_torch(tiny_bundle_zip, {"GASA_HOME": str(home)})
    assert description["format"] == "bundle-zip" and description["path"] == str(tiny_bundle_zip)
    assert Path(description["folder"]).parent.parent == home / "cache" / "bundles"
    assert description == {
        **describe_model(tiny_bundle),
        "path": description["path"],
        "format": "bundle-zip",
        "folder": description["folder"],
    }
    # Pre-processing spacing (12.5, 12.0, 10.0) is in the network's (z, y, x) order: x, y, z is reversed.
    assert description["spacing"] == [10.0, 12.0, 12.5] and description["patch_size"] == [32, 32, 16]
    assert description["block_options"]["dim"] == 10 and description["block_options"]["heads"] == 2
    assert description["version"] == "0.0.1" and description["intended_use"] == "tests only"


def test_nnunet_results_folder(nnunet_results: Path) -> None:
    description = describe_without_torch(nnunet_results)
    _check_against_loaded(description, nnunet_results)
    plans = json.loads((nnunet_results / "plans.json").read_text(encoding="utf-8"))
    config = plans["configurations"]["3d_fullres"]
    assert description["format"] == "nnunet-results-folder" and description["source"] == "nnunet"
    assert description["architecture"] == "nnunet" and description["block_options"] is None
    assert description["spacing"] == config["spacing"][::-1] == [3.5, 4.0, 4.5]
    assert description["folds"] == ["fold_0"]
    assert [label["name"] for label in description["labels"]] == ["liver", "spleen", "kidney"]
    assert description["labels"][0]["terminology_entry"].split("~")[2] == "SCT^10200004^Liver"
    assert description["labels"][2]["terminology_entry"].split("~")[2:4] == ["SCT^64033007^Kidney", "^^"]
    assert description["mirror_axes"] is None, "an nnU-Net checkpoint needs torch: its axes are not described"
    assert description["license"] is None


def test_missing_and_malformed_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model not found"):
        describe_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"expected model\.json"):
        describe_model(tmp_path / "empty")
