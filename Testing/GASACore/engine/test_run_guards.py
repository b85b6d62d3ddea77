"""Run guards: skipped air is background for softmax and region models; window-count and memory bounds refuse
before any work, naming their numbers; normal inputs are unaffected. Bundles and images are built here."""

from __future__ import annotations

import logging
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "bundle"))

from bundle_helpers import TINY_PLAN, TINY_PREPROCESSING

from GASACore.bundle import ArchitectureSpec, ModelBundle, load_model, save_bundle
from GASACore.errors import ImageTooLargeError, InputError
from GASACore.labels import KITS23_LABELS, LABEL_SET_REGIONS
from GASACore.network import build_network
from GASACore.options import SegmentOptions
from GASACore.pipeline import segment
from GASACore.preprocessing import NormalizationScheme

KITS_REGIONS = LABEL_SET_REGIONS["kits23"]
KITS_ORDER = (1, 3, 2)


def _bundle(target: Path, *, regions: bool) -> ModelBundle:
    """A tiny GASA-UNet bundle with random weights: 4 softmax outputs, or 3 KiTS23 sigmoid regions."""
    torch.manual_seed(0)
    outputs = len(KITS_REGIONS) if regions else len(KITS23_LABELS) + 1
    kwargs = {"dim": 10, "heads": 2}
    weights = build_network("gasa-unet", plan=TINY_PLAN, num_input_channels=1, num_classes=outputs, **kwargs)
    save_bundle(
        target,
        metadata={"name": target.name, "version": "0.0.1", "license": "Apache-2.0", "intended_use": "tests only"},
        architecture=ArchitectureSpec("gasa-unet", TINY_PLAN, 1, outputs, kwargs),
        preprocessing=replace(TINY_PREPROCESSING, normalization_schemes=(NormalizationScheme.CT,)),
        labels=KITS23_LABELS,
        fold_weights={"fold_0": weights.state_dict()},
        regions_class_order=KITS_ORDER if regions else None,
        regions=KITS_REGIONS if regions else None,
    )
    return load_model(target)


@pytest.fixture(scope="module")
def softmax_model(tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    return _bundle(tmp_path_factory.mktemp("models") / "tiny-softmax", regions=False)


@pytest.fixture(scope="module")
def regions_model(tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    return _bundle(tmp_path_factory.mktemp("models") / "tiny-regions", regions=True)


def _ct(path: Path, voxels: np.ndarray, spacing: tuple[float, float, float] = (2.0, 2.0, 3.0)) -> Path:
    image = sitk.GetImageFromArray(voxels.astype(np.int16))
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return path


@pytest.mark.parametrize("kind", ["softmax", "regions"])
def test_all_air_with_skip_air_is_all_background(kind: str, request, tmp_path: Path) -> None:
    model = request.getfixturevalue(f"{kind}_model")
    assert (model.regions_class_order is not None) == (kind == "regions")
    air = _ct(tmp_path / "air.nii.gz", np.full((40, 96, 96), -1000), (12.0, 12.0, 12.0))  # no padding: all air
    result = segment(air, model, options=SegmentOptions(skip_air=True, tta=False, device="cpu"))
    assert result.labels.shape == (40, 96, 96)
    assert int(result.labels.max()) == 0, np.unique(result.labels)


def test_region_model_without_skipping_still_paints(regions_model: ModelBundle, tmp_path: Path) -> None:
    """The fix touches skipped windows only: predicted windows of a region model decode as before."""
    rng = np.random.default_rng(0)
    ct = _ct(tmp_path / "noise.nii.gz", rng.integers(-200, 400, size=(40, 96, 96)))
    result = segment(ct, regions_model, options=SegmentOptions(tta=False, device="cpu"))
    assert result.labels.shape == (40, 96, 96)
    assert set(np.unique(result.labels).tolist()) <= {0, 1, 2, 3}


def test_tiny_step_refused_by_window_count_before_preprocessing(softmax_model: ModelBundle, tmp_path: Path) -> None:
    ct = _ct(tmp_path / "ct.nii.gz", np.zeros((40, 96, 96)), (12.0, 12.0, 12.0))
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"expected at most 100000 sliding windows, but an image of .* voxels with "
                                          r"patch 16x32x32 and step 1e-05 needs \d+ windows") as err:  # fmt: skip
        segment(ct, softmax_model, options=SegmentOptions(step_size=1e-5))
    assert "GASA_MAX_WINDOWS" in str(err.value) and time.perf_counter() - start < 5


def test_window_limit_from_environment(softmax_model: ModelBundle, tmp_path: Path, monkeypatch) -> None:
    ct = _ct(tmp_path / "ct.nii.gz", np.zeros((40, 96, 96)), (12.0, 12.0, 12.0))
    monkeypatch.setenv("GASA_MAX_WINDOWS", "2")
    with pytest.raises(InputError, match="expected at most 2 sliding windows"):
        segment(ct, softmax_model)
    monkeypatch.setenv("GASA_MAX_WINDOWS", "many")
    with pytest.raises(InputError, match="GASA_MAX_WINDOWS must be a positive integer"):
        segment(ct, softmax_model)


@pytest.mark.parametrize("spacing", [(900.0, 900.0, 900.0), (0.002, 0.002, 0.002)])
def test_spacing_bomb_refused_fast_and_small(spacing, softmax_model: ModelBundle, tmp_path: Path) -> None:
    """A 32^3 image (1 KB) claiming 900 mm voxels upsamples 72x per axis to the 12 mm model (1.6e10 voxels); the
    0.002 mm one would shrink to nothing, which is refused as less than one voxel wide."""
    ct = _ct(tmp_path / "bomb.nii.gz", np.zeros((32, 32, 32)), spacing)
    assert ct.stat().st_size < 2000
    start, peak = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if spacing[0] > 1:
        with pytest.raises(ImageTooLargeError, match=r"expected a run of at most .* \(the memory limit\), but .* "
                                                     r"needs about .* GB .*GASA_MAX_RUN_BYTES") as err:  # fmt: skip
            segment(ct, softmax_model)
        assert "32x32x32 voxels at 900x900x900 mm" in str(err.value)
    else:
        with pytest.raises(InputError, match=r"expected an image at least one voxel wide .* resample to 0x0x0"):
            segment(ct, softmax_model)
    assert time.perf_counter() - start < 5
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown_kb < 2 * 1024 * 1024


def test_run_byte_limit_from_environment(softmax_model: ModelBundle, tmp_path: Path, monkeypatch) -> None:
    ct = _ct(tmp_path / "ct.nii.gz", np.zeros((40, 96, 96)))
    monkeypatch.setenv("GASA_MAX_RUN_BYTES", "1MB")
    with pytest.raises(ImageTooLargeError, match=r"expected a run of at most 1.0 MB .* needs about"):
        segment(ct, softmax_model)
    monkeypatch.setenv("GASA_MAX_RUN_BYTES", "lots")
    with pytest.raises(InputError, match="GASA_MAX_RUN_BYTES must be a byte size"):
        segment(ct, softmax_model)
    monkeypatch.delenv("GASA_MAX_RUN_BYTES")
    assert segment(ct, softmax_model, options=SegmentOptions(tta=False, device="cpu")).labels.shape == (40, 96, 96)


def test_a_dicom_series_of_another_modality_is_refused_for_a_ct_model(
    softmax_model: ModelBundle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An MR series through a model that normalises Hounsfield units would give a plausible-looking nonsense map."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "io"))
    from bad_inputs_dicom import volume_series

    from GASACore.io import Geometry

    geometry = Geometry((12, 10, 6), (2.0, 2.0, 3.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    folder = volume_series(tmp_path / "mr", np.zeros((6, 10, 12), np.int16), geometry, tags={"0008|0060": "MR"})
    with pytest.raises(
        InputError, match=r"expected a CT series \(Modality CT\) for model tiny-softmax, .* got Modality MR"
    ):
        segment(folder, softmax_model, options=SegmentOptions(tta=False, device="cpu"))
    # A secondary capture ("OT") of a CT, as some converters and anonymisers write it: segmented, with a warning.
    other = volume_series(tmp_path / "ot", np.zeros((6, 10, 12), np.int16), geometry, tags={"0008|0060": "OT"})
    with caplog.at_level(logging.WARNING, logger="GASACore.pipeline"):
        result = segment(other, softmax_model, options=SegmentOptions(tta=False, device="cpu"))
    assert result.labels.shape == (6, 10, 12)
    assert "has DICOM Modality OT, not CT" in caplog.text
