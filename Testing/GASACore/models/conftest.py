"""Fixtures of the catalogue tests: a loopback model server, archives in TotalSegmentator's layout built from
a small nnU-Net v2 model trained on the real sample CT, and a fresh GASA_HOME per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from catalog_support import PROXY_VARIABLES, as_published, zip_folder
from model_server import ModelServer
from nnunet_fixture import intensity_properties, load_training_case, train_test_weights, write_nnunet_results_folder


@pytest.fixture(scope="session")
def published_model(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """An nnU-Net v2 results folder trained briefly on the real sample CT, laid out as TotalSegmentator publishes."""
    ct, target = load_training_case(
        shared_data / "totalsegmentator" / "example_ct.nii.gz",
        shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz",
    )
    weights, props = train_test_weights(ct, target), intensity_properties(ct, target)
    return as_published(write_nnunet_results_folder(tmp_path_factory.mktemp("published"), weights, props))


@pytest.fixture(scope="session")
def model_zip(published_model: Path) -> bytes:
    """The release zip of :func:`published_model`: ``Dataset990_GASATest/nnUNetTrainerNoMirroring__.../...``."""
    return zip_folder(published_model, published_model.parents[1])


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
    folder = as_published(write_nnunet_results_folder(tmp_path_factory.mktemp("layout"), network.state_dict(), props))
    return zip_folder(folder, folder.parents[1])
