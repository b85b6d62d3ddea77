"""GASA networks started from plain nnU-Net networks (``--init-from``): the base's logits at step 0, bit for bit.

The networks are built as nnU-Net's trainer builds them (``get_network_from_plans``: dynamic-network-
architectures' PlainConvUNet / ResidualEncoderUNet for the base, GASACore's class for the GASA plans derived
with the base backbone), with a 320-channel bottleneck as nnU-Net plans for CT, and run on a window of the
real sample CT normalised as nnU-Net's CT normalisation does.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from GASACore.network import GASABlockOptions, UNetPlan, nnunet_architecture
from GASACore.network.unets import BottleneckTransposedConv
from GASACore.preprocessing import IntensityProperties, normalize_channel
from train.planning import build_network_from_plans, derive_gasa_plans, read_base_model, transferred_plans
from train.training import same_labels, transfer_base_weights

#: Small, with nnU-Net's 320-channel cap at the bottleneck (2 x 4 x 4): where one convolution over C + 3n inputs
#: and the plain one over C round differently.
PLAN_320 = UNetPlan(
    patch_size=(16, 32, 32),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(32, 64, 128, 320),
    n_blocks_per_stage=(1, 3, 2, 1),  # residual blocks per stage for the ResEnc base (presets: 1, 3, 4, 6, ...)
)
DATASET = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "kidney": 1, "tumor": 2, "cyst": 3}}
CT_PROPERTIES = IntensityProperties(mean=40.0, std=80.0, percentile_00_5=-200.0, percentile_99_5=400.0)


def base_plans(network: str) -> dict[str, Any]:
    """nnU-Net v2 plans whose 3d_fullres configuration is ``network`` (``nnunet`` or ``nnunet-resenc``)."""
    config = {
        "data_identifier": "nnUNetPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": list(PLAN_320.patch_size),
        "spacing": [3.0, 3.0, 3.0],
        "normalization_schemes": ["CTNormalization"],
        "use_mask_for_norm": [False],
        "architecture": nnunet_architecture(network, PLAN_320),
        "batch_dice": False,
    }
    return {"dataset_name": "Dataset220_KiTS2023", "plans_name": "nnUNetPlans", "image_reader_writer": "SimpleITKIO",
            "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2], "configurations": {"3d_fullres": config},
            "foreground_intensity_properties_per_channel": {"0": {"mean": 40.0, "std": 80.0, "percentile_00_5": -200.0,
                                                                  "percentile_99_5": 400.0}}}  # fmt: skip


@pytest.fixture(scope="module")
def ct_window(example_ct: Path) -> torch.Tensor:
    """``(2, 1, 16, 32, 32)``: two windows of the real CT (z, y, x) around the kidneys, CT-normalised."""
    hu = sitk.GetArrayFromImage(sitk.ReadImage(str(example_ct)))
    windows = [hu[z : z + 16, 40:72, 45:77] for z in (40, 60)]
    return torch.from_numpy(np.stack([normalize_channel(w, "CTNormalization", CT_PROPERTIES) for w in windows]))[
        :, None
    ]


def _pair(network: str, variant: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The base network (random init, as nnU-Net initialises) and the GASA network started from it, eval mode."""
    torch.manual_seed(0)
    plans = base_plans(network)
    base = build_network_from_plans(plans, DATASET, deep_supervision=True)
    gasa = build_network_from_plans(
        derive_gasa_plans(plans, variant, keep_backbone=True), DATASET, deep_supervision=True
    )
    transfer_base_weights(gasa, base.state_dict())
    return base.eval(), gasa.eval()


@pytest.mark.parametrize(("network", "variant"), [("nnunet", "gasa-unet"), ("nnunet-resenc", "gasa-l")])
def test_step_zero_logits_equal_the_base_bit_for_bit(network: str, variant: str, ct_window: torch.Tensor) -> None:
    base, gasa = _pair(network, variant)
    assert type(base).__module__.startswith("dynamic_network_architectures")  # nnU-Net's own class
    assert gasa.gasa.out_channels == 320 + 3 * GASABlockOptions().dim  # the paper's block on the 320 channels
    with torch.no_grad():
        for x in (ct_window[:1], ct_window[1:], ct_window):  # one window (sliding-window inference), a batch
            theirs, ours = base(x), gasa(x)
            assert len(theirs) == len(ours) == 3  # every deep-supervision output
            assert all(torch.equal(a, b) for a, b in zip(theirs, ours, strict=True))
        assert ours[0].abs().max() > 0 and not torch.equal(ours[0][0], ours[0][1])  # real, input-dependent logits
        base.decoder.deep_supervision = gasa.decoder.deep_supervision = False
        assert torch.equal(base(ct_window[:1]), gasa(ct_window[:1]))
    widened = gasa.decoder.transpconvs[0].weight
    assert torch.equal(widened[:320], base.decoder.transpconvs[0].weight) and not widened[320:].any()


def test_training_opens_the_gasa_path_from_the_first_step(ct_window: torch.Tensor) -> None:
    _, gasa = _pair("nnunet", "gasa-unet")
    gasa.train()
    optimiser = torch.optim.SGD(gasa.parameters(), lr=0.01, momentum=0.99, nesterov=True)  # the paper's recipe
    target = (ct_window[:, 0] > 0.5).long()
    for step in range(2):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(gasa(ct_window)[0], target)
        loss.backward()
        if step == 0:
            assert gasa.decoder.transpconvs[0].weight.grad[320:].abs().sum() > 0  # the zero weights learn
            assert not gasa.gasa.qkv.weight.grad.any()  # the block waits for them to be non-zero
        optimiser.step()
    assert gasa.gasa.qkv.weight.grad.abs().sum() > 0 and torch.isfinite(loss)


def test_heads_can_start_fresh_and_mismatches_are_named() -> None:
    plans = base_plans("nnunet")
    base = build_network_from_plans(plans, DATASET)
    gasa = build_network_from_plans(derive_gasa_plans(plans, "gasa-unet", keep_backbone=True), DATASET)
    fresh = dict(gasa.state_dict())
    transfer = transfer_base_weights(gasa, base.state_dict(), copy_heads=False)
    heads = [key for key in transfer.fresh if ".seg_layers." in key]
    assert heads and all(torch.equal(gasa.state_dict()[key], fresh[key]) for key in heads)
    assert transfer.to_json()["zero_initialised"] == ["decoder.transpconvs.0.weight[320:]"]
    other = copy.deepcopy(plans)
    other["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["features_per_stage"] = [32, 64, 128, 256]
    smaller = build_network_from_plans(other, DATASET).state_dict()
    with pytest.raises(ValueError, match=r"do not fit the GASA network .*encoder.stages.3.* the base \(256,"):
        transfer_base_weights(gasa, smaller)
    with pytest.raises(ValueError, match="expected a GASA U-Net"):
        transfer_base_weights(base, base.state_dict())
    assert same_labels(DATASET, json.loads(json.dumps(DATASET)))
    assert not same_labels(DATASET, {**DATASET, "labels": {"background": 0, "kidney": 1}})


def test_the_base_backbone_is_kept_and_gasa_l_needs_a_resenc_base() -> None:
    resenc = base_plans("nnunet-resenc")
    kept = derive_gasa_plans(resenc, "gasa-l", keep_backbone=True)["configurations"]["3d_fullres"]
    paper = derive_gasa_plans(resenc, "gasa-l")["configurations"]["3d_fullres"]
    assert kept["architecture"]["arch_kwargs"]["n_blocks_per_stage"] == [1, 3, 2, 1]  # the base's
    assert paper["architecture"]["arch_kwargs"]["n_blocks_per_stage"] == [3, 3, 3, 5]  # the paper's GASA-L
    assert kept["patch_size"] == resenc["configurations"]["3d_fullres"]["patch_size"]
    with pytest.raises(ValueError, match=r"needs a ResidualEncoderUNet base .* use --variant gasa-unet"):
        derive_gasa_plans(base_plans("nnunet"), "gasa-l", keep_backbone=True)
    with pytest.raises(ValueError, match="gasa-unet derives from a PlainConvUNet plan"):
        derive_gasa_plans(resenc, "gasa-unet", keep_backbone=True)


def test_base_plans_move_to_the_data_set_under_their_own_names(tmp_path: Path) -> None:
    folder = tmp_path / "Dataset220_KiTS2023" / "nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres"
    for fold in ("fold_0", "fold_all"):
        (folder / fold).mkdir(parents=True)
    plans = base_plans("nnunet")
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps({**DATASET, "licence": "CC BY-NC-SA 4.0"}))
    weights = build_network_from_plans(plans, DATASET).state_dict()
    torch.save({"network_weights": weights}, folder / "fold_0" / "checkpoint_final.pth")
    torch.save({"network_weights": weights}, folder / "fold_all" / "checkpoint_best.pth")
    assert read_base_model(folder, target_fold=0).fold == "fold_0"
    base = read_base_model(folder, target_fold=3)  # no fold_3: fold_all, whose only checkpoint is best
    assert (base.fold, base.checkpoint.name, base.licence) == ("fold_all", "checkpoint_best.pth", "CC BY-NC-SA 4.0")
    assert base.record()["trainer"] == "nnUNetTrainerNoMirroring" and base.record()["network"] == "nnunet"
    moved = transferred_plans(base, "Dataset501_Kidneys")
    config = moved["configurations"]["3d_fullres"]
    assert (moved["dataset_name"], moved["plans_name"]) == ("Dataset501_Kidneys", "nnUNetPlans_from220")
    assert config["data_identifier"] == "nnUNetPlans_from220_3d_fullres"  # never the data set's own arrays
    assert moved["foreground_intensity_properties_per_channel"] == plans["foreground_intensity_properties_per_channel"]
    (folder / "fold_1").mkdir()
    torch.save({"network_weights": weights}, folder / "fold_1" / "checkpoint_final.pth")
    (folder / "fold_all" / "checkpoint_best.pth").unlink()
    with pytest.raises(ValueError, match=r"has folds \['fold_0', 'fold_1'\]: choose the one to start from"):
        read_base_model(folder, target_fold=3)
    assert read_base_model(folder, fold="1", target_fold=3).fold == "fold_1"


def test_bottleneck_transposed_conv_is_one_convolution_over_all_inputs() -> None:
    torch.manual_seed(0)
    split = BottleneckTransposedConv(40, 16, 2, 2, backbone_channels=32)
    plain = torch.nn.ConvTranspose3d(40, 16, 2, 2)
    plain.load_state_dict(split.state_dict())
    x = torch.randn(2, 40, 2, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(split(x), plain(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"backbone_channels must be in 1\.\.39"):
        BottleneckTransposedConv(40, 16, 2, 2, backbone_channels=40)
