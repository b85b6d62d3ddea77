"""Fixtures of the catalogue tests: a loopback model server, archives in TotalSegmentator's layout built from
a small nnU-Net v2 model trained on the real sample CT, catalogue files, and a fresh GASA_HOME per test."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from model_server import ModelServer
from nnunet_fixture import intensity_properties, load_training_case, train_test_weights, write_nnunet_results_folder

REPO_ROOT = Path(__file__).resolve().parents[3]
#: TotalSegmentator's trainer for its 1.5 mm parts: the network comes from the plans, mirroring is off.
TRAINER = "nnUNetTrainerNoMirroring"
#: The model folder inside the archive, as TotalSegmentator lays its release zips out.
MODEL_FOLDER = f"Dataset990_GASATest/{TRAINER}__nnUNetPlans__3d_fullres"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy")


def _as_published(folder: Path) -> Path:
    """Rename ``nnUNetTrainer__...`` to TotalSegmentator's trainer and record it in the checkpoint as it does."""
    target = folder.with_name(f"{TRAINER}__nnUNetPlans__3d_fullres")
    folder.rename(target)
    checkpoint_path = target / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(checkpoint_path, weights_only=False)
    checkpoint["trainer_name"] = TRAINER
    checkpoint["inference_allowed_mirroring_axes"] = None  # what nnUNetTrainerNoMirroring saves
    torch.save(checkpoint, checkpoint_path)
    (target / "dataset_fingerprint.json").write_text(json.dumps({"spacings": [[3.0, 3.0, 3.0]]}), encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def published_model(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """An nnU-Net v2 results folder trained briefly on the real sample CT, laid out as TotalSegmentator publishes."""
    ct, target = load_training_case(
        shared_data / "totalsegmentator" / "example_ct.nii.gz",
        shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz",
    )
    weights, props = train_test_weights(ct, target), intensity_properties(ct, target)
    return _as_published(write_nnunet_results_folder(tmp_path_factory.mktemp("published"), weights, props))


def zip_folder(folder: Path, root: Path) -> bytes:
    """``folder`` zipped with member names relative to ``root`` (so ``Dataset.../Trainer__.../...``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


@pytest.fixture(scope="session")
def model_zip(published_model: Path) -> bytes:
    """The release zip of :func:`published_model`: ``Dataset990_GASATest/nnUNetTrainerNoMirroring__.../...``."""
    return zip_folder(published_model, published_model.parents[1])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remote_entry(model_id: str, url: str | list[str], data: bytes, *, pinned: bool = True, **extra: Any) -> dict:
    """A remote catalogue entry for ``data`` served at ``url``."""
    return {
        "id": model_id,
        "version": "1.0.0",
        "title": f"test model {model_id}",
        "description": "a small nnU-Net v2 model trained on the sample CT",
        "modality": "CT",
        "format": "nnunet",
        "url": url,
        "size": len(data),
        "sha256": sha256(data) if pinned else None,
        "license": {"name": "Apache-2.0", "commercial_use": True},
        "citation": "GASASegmenter tests",
        **extra,
    }


def write_catalog(path: Path, *entries: dict) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "models": list(entries)}, indent=2), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A GASA_HOME per test, no GASA_CATALOG and no proxy variables (tests reach 127.0.0.1 directly)."""
    home = tmp_path / "gasa_home"
    monkeypatch.setenv("GASA_HOME", str(home))
    monkeypatch.delenv("GASA_CATALOG", raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


@pytest.fixture(scope="session")
def layout_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A quick archive in the same layout (an untrained network of the same plan) for the download tests."""
    from nnunet_fixture import CLASSES, TEST_PLAN

    from GASACore.network import build_network

    torch.manual_seed(0)
    network = build_network("nnunet", plan=TEST_PLAN, num_input_channels=1, num_classes=len(CLASSES) + 1)
    props = {"max": 300.0, "mean": 50.0, "median": 50.0, "min": -100.0, "percentile_00_5": -90.0,
             "percentile_99_5": 250.0, "std": 40.0}  # fmt: skip
    folder = _as_published(write_nnunet_results_folder(tmp_path_factory.mktemp("layout"), network.state_dict(), props))
    return zip_folder(folder, folder.parents[1])
