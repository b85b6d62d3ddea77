"""Normalisation: hand-computed values and equality with nnU-Net v2's classes."""

from __future__ import annotations

import numpy as np
import pytest
from nnunetv2.preprocessing.normalization import default_normalization_schemes as nn_norm

from GASACore.preprocessing import AIR_HU, IntensityProperties, NormalizationScheme, air_threshold, normalize_channel

PROPS = IntensityProperties(mean=100.0, std=50.0, percentile_00_5=-200.0, percentile_99_5=300.0)


def test_ct_normalisation_by_hand() -> None:
    hu = np.array([[-1024, -200, 0], [100, 300, 3000]], dtype=np.int32)
    # clip to [-200, 300] -> [-200, -200, 0, 100, 300, 300]; then (v - 100) / 50
    expected = np.array([[-6.0, -6.0, -2.0], [0.0, 4.0, 4.0]], dtype=np.float32)
    out = normalize_channel(hu, "CTNormalization", PROPS)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    assert hu[0, 0] == -1024  # input untouched


def test_zscore_inside_mask_leaves_outside_unchanged() -> None:
    image = np.array([0.0, 0.0, 2.0, 4.0, 6.0], dtype=np.float32)
    mask = image != 0
    out = normalize_channel(image, "ZScoreNormalization", mask=mask, use_mask_for_norm=True)
    std = np.std([2.0, 4.0, 6.0])
    np.testing.assert_allclose(out, [0, 0, -2 / std, 0, 2 / std], rtol=1e-6)


@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize(
    "name", ["CTNormalization", "ZScoreNormalization", "NoNormalization", "RescaleTo01Normalization"]
)
def test_equals_nnunet_classes(name: str, use_mask: bool) -> None:
    rng = np.random.default_rng(3)
    image = rng.normal(40, 300, size=(9, 11, 13)).astype(np.float32)
    image[:2] = 0
    mask = image != 0
    seg = np.where(mask, 0, -1).astype(np.int8)
    props = {**{k: getattr(PROPS, k) for k in ("mean", "std", "percentile_00_5", "percentile_99_5")}}
    reference = getattr(nn_norm, name)(use_mask_for_norm=use_mask, intensityproperties=props).run(image.copy(), seg)
    ours = normalize_channel(image, name, PROPS, mask=mask, use_mask_for_norm=use_mask)
    np.testing.assert_array_equal(ours, reference)


def test_rgb_and_missing_properties_errors() -> None:
    np.testing.assert_allclose(normalize_channel(np.array([0, 255]), NormalizationScheme.RGB_TO_01), [0, 1])
    with pytest.raises(ValueError, match=r"expects values in \[0, 255\]"):
        normalize_channel(np.array([-1.0, 3.0]), "RGBTo01Normalization")
    with pytest.raises(ValueError, match="needs IntensityProperties"):
        normalize_channel(np.zeros(3), "CTNormalization")


def test_air_threshold_by_hand() -> None:
    wide = IntensityProperties(mean=100.0, std=50.0, percentile_00_5=-1000.0, percentile_99_5=1500.0)
    assert air_threshold("CTNormalization", wide) == pytest.approx((-900 - 100) / 50 + 1e-4, abs=1e-6)
    narrow = IntensityProperties(mean=100.0, std=50.0, percentile_00_5=-145.0, percentile_99_5=79.0)
    assert air_threshold(NormalizationScheme.CT, narrow) == pytest.approx((-145 - 100) / 50 + 1e-4, abs=1e-6)
    assert air_threshold("ZScoreNormalization", None) is None
    with pytest.raises(ValueError, match="IntensityProperties"):
        air_threshold("CTNormalization", None)


def test_air_threshold_separates_air_of_a_real_ct(example_ct) -> None:
    """Voxels at or below the normalised threshold are exactly the voxels at or below -900 HU."""
    import nibabel as nib

    hu = np.asarray(nib.load(example_ct).dataobj, dtype=np.float32)[::2, ::2, ::2]
    props = IntensityProperties(mean=40.0, std=60.0, percentile_00_5=-1000.0, percentile_99_5=1200.0)
    normalised = normalize_channel(hu, "CTNormalization", props)
    below = normalised <= air_threshold("CTNormalization", props)
    assert 0.05 < below.mean() < 0.95  # the scan holds both air and body
    np.testing.assert_array_equal(below, hu <= AIR_HU)
