"""The one nnU-Net plans <-> network conversion, checked against nnU-Net's own network builder."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from GASACore.network import (
    PAPER_BTCV,
    GASABlockOptions,
    UNetPlan,
    architecture_from_nnunet,
    build_network,
    nnunet_architecture,
)

SMALL = UNetPlan(
    patch_size=(8, 16, 16),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(4, 8, 16, 16),
    n_blocks_per_stage=(1, 2, 2, 3),
)


def _nnunet_build(architecture: dict[str, Any], num_classes: int = 3) -> torch.nn.Module:
    return get_network_from_plans(
        architecture["network_class_name"],
        architecture["arch_kwargs"],
        architecture["_kw_requires_import"],
        1,
        num_classes,
        allow_init=True,
        deep_supervision=False,
    )


@pytest.mark.parametrize("name", ["nnunet", "nnunet-resenc", "gasa-unet", "gasa-l"])
def test_plans_written_for_a_network_build_the_same_network_in_nnunet(name: str) -> None:
    options = GASABlockOptions(dim=10, heads=2) if name.startswith("gasa") else None
    architecture = nnunet_architecture(name, SMALL, options)
    theirs = _nnunet_build(architecture)
    ours = build_network(name, plan=SMALL, num_input_channels=1, num_classes=3, block_options=options)
    assert {k: v.shape for k, v in theirs.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
    read = architecture_from_nnunet({"patch_size": list(SMALL.patch_size), "architecture": architecture})
    assert (read.name, read.block_options) == (name, options)
    expected = SMALL if name in ("nnunet-resenc", "gasa-l") else dataclasses.replace(SMALL, n_blocks_per_stage=())
    assert read.plan == expected, "the plan survives the round trip (residual blocks only for ResEnc networks)"


def test_paper_plan_parameter_counts_through_nnunet() -> None:
    for name, parameters in (("nnunet", 30_758_214), ("gasa-unet", 31_817_105)):
        network = _nnunet_build(nnunet_architecture(name, PAPER_BTCV), num_classes=14)
        assert sum(p.numel() for p in network.parameters()) == parameters


def _config(**arch_changes: Any) -> dict[str, Any]:
    architecture = copy.deepcopy(nnunet_architecture("nnunet", SMALL))
    architecture["arch_kwargs"].update(arch_changes)
    return {"patch_size": [8, 16, 16], "architecture": architecture}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nonlin": "torch.nn.ReLU"}, r"nonlin LeakyReLU \(got 'torch.nn.ReLU'\)"),
        ({"norm_op": "torch.nn.BatchNorm3d"}, r"norm_op InstanceNorm3d"),
        ({"conv_op": "torch.nn.Conv2d"}, r"conv_op Conv3d"),
        ({"nonlin_kwargs": {"negative_slope": 0.2}}, r"negative_slope 0\.01 \(got 0\.2\)"),
        ({"dropout_op": "torch.nn.Dropout3d"}, r"no dropout_op"),
        ({"conv_bias": False}, r"conv_bias True \(got False\)"),
        ({"norm_op_kwargs": {"eps": 1e-3, "affine": True}}, r"eps 1e-05"),
    ],
)
def test_other_operations_are_refused_not_silently_replaced(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        architecture_from_nnunet(_config(**changes))


def test_bad_plans_say_what_is_missing() -> None:
    with pytest.raises(ValueError, match=r"nnU-Net v2 >= 2\.4 plans expected"):
        architecture_from_nnunet({"patch_size": [8, 16, 16]})
    config = _config()
    del config["architecture"]["arch_kwargs"]["n_conv_per_stage"]
    with pytest.raises(ValueError, match=r"need arch_kwargs 'n_conv_per_stage'"):
        architecture_from_nnunet(config)
    config = _config()
    config["architecture"]["network_class_name"] = "monai.networks.nets.UNETR"  # MONAI's, not our UNETR backbone
    with pytest.raises(ValueError, match=r"unsupported network class 'monai.networks.nets.UNETR'"):
        architecture_from_nnunet(config)
