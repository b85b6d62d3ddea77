"""Re-orientation to a model's training orientation: lossless, equal to SimpleITK's, and undone exactly."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore import SegmentOptions, segment
from GASACore.bundle import load_model
from GASACore.errors import ModelError, UnsupportedGeometryError
from GASACore.preprocessing.orientation import axis_alignment, check_orientation_code

DEMO = Path(__file__).resolve().parents[3] / "Resources" / "models" / "gasa-demo-btcv"


def _axis_aligned_directions() -> list[np.ndarray]:
    directions = []
    for permutation in itertools.permutations(range(3)):
        for signs in itertools.product((-1, 1), repeat=3):
            direction = np.zeros((3, 3))
            for column, row in enumerate(permutation):
                direction[row, column] = signs[column]
            directions.append(direction)
    return directions


@pytest.mark.parametrize("target", ["RAS", "LPS", "PIR"])
def test_alignment_equals_simpleitks_dicomorient_for_all_48_axis_orders(target: str) -> None:
    rng = np.random.default_rng(0)
    array = rng.random((3, 4, 5)).astype(np.float32)
    for direction in _axis_aligned_directions():
        image = sitk.GetImageFromArray(array)
        image.SetDirection(direction.ravel().tolist())
        image.SetSpacing((1.0, 2.0, 3.0))
        expected = sitk.DICOMOrient(image, target)
        alignment = axis_alignment(direction.ravel(), target)
        assert np.array_equal(alignment.apply(array), sitk.GetArrayFromImage(expected))
        assert alignment.spacing_zyx((3.0, 2.0, 1.0)) == tuple(reversed(expected.GetSpacing()))
        assert np.array_equal(alignment.restore(alignment.apply(array)), array)


def test_bad_codes_and_45_degree_axes_are_refused() -> None:
    with pytest.raises(ValueError, match="one of R/L, A/P and S/I each"):
        check_orientation_code("RRS")
    half = np.sqrt(0.5)
    with pytest.raises(UnsupportedGeometryError, match="lies between two of its axes"):
        axis_alignment((half, -half, 0, half, half, 0, 0, 0, 1), "RAS")


def test_bundle_with_a_bad_orientation_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "bad"
    shutil.copytree(DEMO, bundle)
    meta = json.loads((bundle / "model.json").read_text())
    meta["inference"]["orientation"] = "XYZ"
    (bundle / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"inference\.orientation must be 3 letters"):
        load_model(bundle)


def test_demo_model_segments_an_lps_copy_of_its_ras_training_ct_identically(example_ct: Path, tmp_path: Path) -> None:
    assert load_model(DEMO).orientation == "RAS"
    original = sitk.ReadImage(str(example_ct))
    lps = sitk.DICOMOrient(original, "LPS")  # the same voxels, stored in a DICOM series' axis order
    sitk.WriteImage(lps, str(tmp_path / "lps.nrrd"))
    options = SegmentOptions(device="cpu", tta=False)
    labels_ras = segment(example_ct, DEMO, options=options).labels
    result_lps = segment(tmp_path / "lps.nrrd", DEMO, options=options)
    assert result_lps.labels.shape == tuple(reversed(lps.GetSize()))  # the input's own grid
    back = sitk.GetImageFromArray(result_lps.labels)
    back.CopyInformation(lps)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.DICOMOrient(back, "RAS")), labels_ras)
    assert (labels_ras == 6).sum() > 30000  # the liver is found (not an empty map agreeing with itself)
