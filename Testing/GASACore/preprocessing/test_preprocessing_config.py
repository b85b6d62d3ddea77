"""PreprocessingConfig: JSON round trip, nnU-Net plans import, validation."""

from __future__ import annotations

import json

import pytest

from GASACore.preprocessing import (
    IntensityProperties,
    NormalizationScheme,
    PreprocessingConfig,
    ResamplingOrders,
)


def _config(**overrides: object) -> PreprocessingConfig:
    kwargs: dict[str, object] = {
        "spacing": (2.5, 0.8, 0.8),
        "patch_size": (48, 192, 192),
        "intensity_properties": (IntensityProperties(60.0, 140.0, -970.0, 1210.0),),
    }
    kwargs.update(overrides)
    return PreprocessingConfig(**kwargs)  # type: ignore[arg-type]


def test_json_round_trip_is_plain_json() -> None:
    config = _config(
        transpose_forward=(2, 0, 1),
        transpose_backward=(1, 2, 0),
        data=ResamplingOrders(3, 1, True),
    )
    text = json.dumps(config.to_json())
    assert PreprocessingConfig.from_json(json.loads(text)) == config
    assert PreprocessingConfig.from_json(text) == config
    assert json.loads(text)["schema_version"] == 1


def test_defaults_are_nnunet_defaults() -> None:
    config = _config()
    assert config.anisotropy_threshold == 3.0
    assert (config.data.order, config.data.order_z, config.data.force_separate_z) == (3, 0, None)
    assert (config.seg.order, config.probabilities.order, config.probabilities.order_z) == (1, 1, 0)
    assert config.normalization_schemes == (NormalizationScheme.CT,)


def test_from_nnunet_reads_plans(plans_factory, dataset_factory) -> None:
    plans = plans_factory((2.5, 2.0, 2.0), transpose_forward=(2, 0, 1), patch_size=(32, 64, 80))
    plans["configurations"]["3d_lowres"] = {"inherits_from": "3d_fullres", "spacing": [5.0, 4.0, 4.0]}
    config = PreprocessingConfig.from_nnunet(plans, "3d_lowres", dataset_factory())
    assert config.spacing == (5.0, 4.0, 4.0)
    assert config.patch_size == (32, 64, 80)
    assert config.transpose_forward == (2, 0, 1) and config.transpose_backward == (1, 2, 0)
    assert config.intensity_properties[0] == IntensityProperties(60.5, 140.25, -970.0, 1210.0)
    assert config.use_mask_for_norm == (False,)
    assert config.probabilities == ResamplingOrders(1, 0, None)
    assert PreprocessingConfig.from_json(config.to_json()) == config


def test_from_nnunet_rejects_unknown_configuration(plans_factory, dataset_factory) -> None:
    with pytest.raises(ValueError, match="configuration must be one of"):
        PreprocessingConfig.from_nnunet(plans_factory((1, 1, 1)), "2d", dataset_factory())


def test_channel_aliases_and_unknown_schemes() -> None:
    assert NormalizationScheme.parse("CT") is NormalizationScheme.CT
    assert NormalizationScheme.parse("ZScoreNormalization") is NormalizationScheme.ZSCORE
    with pytest.raises(ValueError, match="normalisation scheme must be one of"):
        NormalizationScheme.parse("Hounsfield")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"spacing": (1.0, 0.0, 1.0)}, "spacing must be"),
        ({"transpose_forward": (0, 0, 1)}, "permutation"),
        ({"transpose_forward": (2, 0, 1), "transpose_backward": (2, 0, 1)}, "not the inverse"),
        ({"intensity_properties": (None,)}, "needs intensity_properties"),
        ({"use_mask_for_norm": (False, True)}, "one entry per channel"),
        ({"data": ResamplingOrders(3, 0, None), "anisotropy_threshold": 0}, "anisotropy_threshold"),
    ],
)
def test_invalid_configs_say_what_was_given(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(**overrides)


def test_from_json_rejects_other_versions_and_keys() -> None:
    data = _config().to_json()
    with pytest.raises(ValueError, match="schema_version"):
        PreprocessingConfig.from_json({**data, "schema_version": 2})
    with pytest.raises(ValueError, match="unknown pre-processing keys"):
        PreprocessingConfig.from_json({**data, "median_spacing": [1, 1, 1]})
    with pytest.raises(ValueError, match="order"):
        ResamplingOrders(7)
