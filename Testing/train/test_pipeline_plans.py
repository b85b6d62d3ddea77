"""GASA plans derived from nnU-Net plans build through nnU-Net's get_network_from_plans with the paper's delta."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import torch

from GASACore.network import NETWORKS, PAPER_BTCV, GASABlockOptions, Topology, nnunet_architecture
from train.cli import build_parser, gasa_options_from_args
from train.planning import (
    GASA_VARIANTS,
    PLAN_VARIANTS,
    build_network_from_plans,
    derive_base_plans,
    derive_gasa_plans,
    gasa_l_blocks_per_stage,
)

#: GASA block + the 75 extra inputs of the first transposed convolution at the paper's BTCV plan.
PAPER_GASA_DELTA = 1_058_891
PAPER_NNUNET_PARAMETERS = 30_758_214
DATASET_JSON = {"channel_names": {"0": "CT"}, "labels": {"background": 0, **{f"organ{i}": i for i in range(1, 14)}}}


def _nnunet_plans(plan: Any = PAPER_BTCV) -> dict[str, Any]:
    """nnU-Net v2 plans (as its ExperimentPlanner writes them) for the paper's BTCV network (or another plan)."""
    kwargs = {
        "n_stages": plan.n_stages,
        "features_per_stage": list(plan.features_per_stage),
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [list(k) for k in plan.kernel_sizes],
        "strides": [list(s) for s in plan.strides],
        "n_conv_per_stage": [2] * plan.n_stages,
        "n_conv_per_stage_decoder": [2] * (plan.n_stages - 1),
        "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    config = {
        "data_identifier": "nnUNetPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": list(plan.patch_size),
        "spacing": [3.0, 0.76, 0.76],
        "normalization_schemes": ["CTNormalization"],
        "use_mask_for_norm": [False],
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": kwargs,
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        },
        "batch_dice": False,
    }
    two_d = copy.deepcopy(config)
    two_d["patch_size"] = [192, 192]
    return {
        "dataset_name": "Dataset501_BTCV",
        "plans_name": "nnUNetPlans",
        "image_reader_writer": "SimpleITKIO",
        "label_manager": "LabelManager",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"2d": two_d, "3d_fullres": config},
    }


def _parameters(plans: dict[str, Any]) -> int:
    network = build_network_from_plans(plans, DATASET_JSON)
    return sum(p.numel() for p in network.parameters())


def test_gasa_unet_plan_adds_exactly_the_paper_delta() -> None:
    base = _nnunet_plans()
    derived = derive_gasa_plans(base, "gasa-unet")
    assert derived["plans_name"] == "nnUNetPlans_gasa-unet"
    assert list(derived["configurations"]) == ["3d_fullres"]
    assert derived["configurations"]["3d_fullres"]["data_identifier"] == "nnUNetPlans_3d_fullres"  # shared data
    assert base["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"].get("gasa_dim") is None  # untouched
    assert _parameters(base) == PAPER_NNUNET_PARAMETERS
    assert _parameters(derived) - PAPER_NNUNET_PARAMETERS == PAPER_GASA_DELTA


def test_gasa_l_plan_is_resenc_3_to_5_blocks_plus_the_same_delta() -> None:
    derived = derive_gasa_plans(_nnunet_plans(), "gasa-l")
    kwargs = derived["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    assert kwargs["n_blocks_per_stage"] == [3, 3, 3, 3, 3, 5]
    assert kwargs["n_conv_per_stage_decoder"] == [1] * 5
    assert "n_conv_per_stage" not in kwargs
    network = build_network_from_plans(derived, DATASET_JSON)
    assert type(network).__name__ == "GASAResidualEncoderUNet"
    assert [len(stage.blocks) for stage in network.encoder.stages] == [3, 3, 3, 3, 3, 5]
    plain_resenc = copy.deepcopy(derived)
    arch = plain_resenc["configurations"]["3d_fullres"]["architecture"]
    arch["network_class_name"] = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    arch["arch_kwargs"] = {k: v for k, v in arch["arch_kwargs"].items() if not k.startswith(("gasa_", "patch_"))}
    assert _parameters(derived) - _parameters(plain_resenc) == PAPER_GASA_DELTA


def test_gasa_options_reach_the_network() -> None:
    options = GASABlockOptions(dim=50, heads=10, positional_embedding="tokens", qkv_norm=True, dropout=0.1)
    derived = derive_gasa_plans(_nnunet_plans(), "gasa-unet", options=options)
    network = build_network_from_plans(derived, DATASET_JSON)
    assert network.gasa.out_channels == 320 + 3 * 50
    assert network.gasa.token_embedding is not None and network.gasa.qkv_norm is not None
    assert derived["gasa"]["options"] == options.to_json()
    assert derived["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["gasa_pe"] == "tokens"


def test_cli_flags_build_the_options_with_the_papers_defaults() -> None:
    parser = build_parser()
    assert gasa_options_from_args(parser.parse_args(["plan", "501"])) == GASABlockOptions()
    args = parser.parse_args(["plan", "501", "--gasa-dim", "10", "--gasa-heads", "2", "--gasa-pe", "none"])
    assert gasa_options_from_args(args) == GASABlockOptions(dim=10, heads=2, positional_embedding="none")
    assert parser.parse_args(["plan", "501"]).variants == list(GASA_VARIANTS) == ["gasa-unet", "gasa-l"]
    assert parser.parse_args(["train", "501", "--variant", "nnunet"]).variant == "nnunet"
    with pytest.raises(SystemExit):
        parser.parse_args(["plan", "501", "--gasa-pe", "sinusoidal"])


def test_blocks_per_stage_adapt_to_the_number_of_stages() -> None:
    assert gasa_l_blocks_per_stage(4) == [3, 3, 3, 5]
    with pytest.raises(ValueError, match="at least 2"):
        gasa_l_blocks_per_stage(1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variant": "swin-unetr"}, "variant must be one of"),
        ({"variant": "gasa-unet", "configuration": "3d_lowres"}, "no configuration"),
        ({"variant": "gasa-unet", "configuration": "2d"}, "3D configuration"),
    ],
)
def test_derive_rejects_bad_requests(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        derive_gasa_plans(_nnunet_plans(), **kwargs)


def test_gasa_options_are_validated() -> None:
    with pytest.raises(ValueError, match=r"multiple of heads .*dim=7, heads=2"):
        derive_gasa_plans(_nnunet_plans(), "gasa-unet", options={"dim": 7, "heads": 2})
    with pytest.raises(ValueError, match=r"derives from a PlainConvUNet plan; got a gasa-unet plan"):
        derive_gasa_plans(derive_gasa_plans(_nnunet_plans(), "gasa-unet"), "gasa-l")


#: An nnU-Net plan of another topology (5 stages, patch 40 x 160 x 128) to derive the paper's plan from.
OTHER_PLAN = dataclasses.replace(
    PAPER_BTCV,
    patch_size=(40, 160, 128),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2)),
    kernel_sizes=((1, 3, 3),) + ((3, 3, 3),) * 4,
    features_per_stage=(32, 64, 128, 256, 320),
    n_conv_per_stage=(2,) * 5,
    n_conv_per_stage_decoder=(2,) * 4,
    n_blocks_per_stage=(1,) * 5,
    n_conv_per_stage_decoder_resenc=(1,) * 4,
)


def test_the_paper_plan_replaces_nnunets_topology_and_is_recorded() -> None:
    planned = _nnunet_plans(OTHER_PLAN)
    paper = derive_base_plans(planned, "paper-btcv")
    assert paper is not None and paper["plans_name"] == "nnUNetPlans_paper-btcv"
    config = paper["configurations"]["3d_fullres"]
    assert config["patch_size"] == [48, 192, 192] and config["data_identifier"] == "nnUNetPlans_3d_fullres"
    assert config["architecture"] == nnunet_architecture("nnunet", PAPER_BTCV)  # the one definition of the plan
    assert paper["gasa"] == {
        "plan": "paper-btcv",
        "derived_from": "nnUNetPlans",
        "configuration": "3d_fullres",
        "patch_size": [48, 192, 192],
        "bottleneck_size": [6, 6, 6],
    }
    assert _parameters(paper) == PAPER_NNUNET_PARAMETERS
    gasa = derive_gasa_plans(paper, "gasa-unet")
    assert gasa["plans_name"] == "nnUNetPlans_paper-btcv_gasa-unet" and gasa["gasa"]["plan"] == "paper-btcv"
    assert _parameters(gasa) - PAPER_NNUNET_PARAMETERS == PAPER_GASA_DELTA
    assert derive_base_plans(planned, "nnunet") is None  # nnU-Net's own plans stay the base
    assert derive_gasa_plans(planned, "gasa-unet")["gasa"]["plan"] == "nnunet"


def test_a_patch_size_keeps_nnunets_topology() -> None:
    cubic = derive_base_plans(_nnunet_plans(OTHER_PLAN), patch_size=(16, 64, 64))
    assert cubic is not None and cubic["plans_name"] == "nnUNetPlans_patch16x64x64"
    assert cubic["gasa"]["plan"] == "patch16x64x64" and cubic["gasa"]["bottleneck_size"] == [4, 4, 4]
    kwargs = cubic["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    assert kwargs["strides"] == [list(s) for s in OTHER_PLAN.strides]
    network = build_network_from_plans(derive_gasa_plans(cubic, "nnunet-mat"), DATASET_JSON)
    assert type(network).__name__ == "MATPlainConvUNet" and network.mat.spatial_size == (4, 4, 4)
    with pytest.raises(ValueError, match=r"multiples of the total stride \(4, 16, 16\).*got \(16, 64, 60\)"):
        derive_base_plans(_nnunet_plans(OTHER_PLAN), patch_size=(16, 64, 60))
    with pytest.raises(ValueError, match=r"plan 'paper-btcv' fixes its own patch \[48, 192, 192\]; got a patch"):
        derive_base_plans(_nnunet_plans(), "paper-btcv", patch_size=(32, 64, 64))
    with pytest.raises(ValueError, match=r"plan must be one of \['nnunet', 'paper-btcv'\], got 'paper-amos'"):
        derive_base_plans(_nnunet_plans(), "paper-amos")


def test_mat_plans_on_an_asymmetric_bottleneck_are_refused_when_built() -> None:
    asymmetric = derive_gasa_plans(_nnunet_plans(OTHER_PLAN), "nnunet-mat")  # bottleneck 10 x 10 x 8
    with pytest.raises(ValueError, match=r"needs a cubic feature map.*\(10, 10, 8\)"):
        build_network_from_plans(asymmetric, DATASET_JSON)


@pytest.mark.parametrize("variant", ["vnet-gasa", "unetr", "nnunet-cbam", "nnunet-at"])
def test_every_network_derives_from_nnunets_plan(variant: str) -> None:
    spec = NETWORKS[variant]
    derived = derive_gasa_plans(_nnunet_plans(OTHER_PLAN), variant)
    config = derived["configurations"]["3d_fullres"]
    assert derived["gasa"]["topology"] == spec.topology and derived["gasa"]["variant"] == variant
    if spec.topology.follows_plan:
        assert config["patch_size"] == [40, 160, 128]
    else:  # the backbone's own topology at nnU-Net's patch, fitted to multiples of 16
        assert config["patch_size"] == [48, 160, 128] == derived["gasa"]["patch_size"]
        assert config["architecture"] == nnunet_architecture(variant, spec.topology.plan_for((48, 160, 128)))
    assert config["architecture"]["network_class_name"] == spec.plans_class_path
    with torch.device("meta"):
        network = build_network_from_plans(derived, DATASET_JSON, deep_supervision=spec.deep_supervision)
    assert type(network).__name__ == spec.class_path.rsplit(".", 1)[-1]
    if not spec.topology.follows_plan:
        with pytest.raises(ValueError, match=rf"{variant} has its own topology \({spec.topology}\): it cannot keep"):
            derive_gasa_plans(_nnunet_plans(OTHER_PLAN), variant, keep_backbone=True)


def test_cli_choices_come_from_the_registry() -> None:
    parser = build_parser()
    assert tuple(name for name in NETWORKS if name not in ("nnunet", "nnunet-resenc")) == PLAN_VARIANTS
    args = parser.parse_args(["plan", "501", "--variants", *PLAN_VARIANTS, "--plan", "paper-btcv"])
    assert args.variants == list(PLAN_VARIANTS) and args.plan == "paper-btcv" and args.patch_size is None
    assert parser.parse_args(["train", "501", "--variant", "unetr-gasa"]).variant == "unetr-gasa"
    assert parser.parse_args(["plan", "501", "--patch-size", "32", "32", "32"]).patch_size == [32, 32, 32]
    for argv in (["plan", "501", "--variants", "swin-unetr"], ["plan", "501", "--plan", "paper-amos"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    assert Topology.MONAI_VNET.fit_patch((40, 160, 128)) == (48, 160, 128)
