"""GASA on other backbones: MONAI's V-Net and UNETR, nnMamba; counts, CPU forward passes, nnU-Net's builder, errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch
from network_helpers import SMALL, count
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from torch import nn

from GASACore.network import (
    NETWORKS,
    PAPER_BTCV,
    GASABlockOptions,
    Topology,
    architecture_from_nnunet,
    bottleneck_size,
    build_network,
    network_arch_kwargs,
    nnunet_architecture,
)
from GASACore.network.monai_backbones import GASAUNETR, UNETR, GASAVNet, VNet
from GASACore.network.nnmamba import GASANNMamba, NNMamba

# A UNETR small enough for CPU tests (the defaults are a 12-layer, 768-wide ViT: ~93 M parameters).
TINY_UNETR = {"unetr_feature_size": 8, "unetr_hidden_size": 48, "unetr_mlp_dim": 96, "unetr_num_heads": 4}


def _gasa_added(channels: int, bottleneck: tuple[int, int, int], widened: int) -> int:
    """GASA block (dim 25, 5 heads, voxel embedding) + the ``widened`` weights of the first decoder input."""
    sx, sy, sz = bottleneck
    projections = channels * 25 * (sy * sz + sx * sz + sx * sy) + 3 * 25
    return projections + 1_950 + 650 + sx * sy * sz + widened


def test_paper_plan_parameter_counts() -> None:
    with torch.device("meta"):
        vnet, gasa_vnet = (cls(input_channels=1, num_classes=14, patch_size=(48, 192, 192)) for cls in (VNet, GASAVNet))
        unetr, gasa_unetr = (
            cls(input_channels=1, num_classes=14, patch_size=(48, 192, 192)) for cls in (UNETR, GASAUNETR)
        )
    # Bottleneck 3 x 12 x 12 (patch / 16). V-Net: 256 channels, first up-convolution 2^3 -> 128 outputs.
    assert count(vnet) == 45_646_126
    assert count(gasa_vnet) - count(vnet) == _gasa_added(256, (3, 12, 12), 75 * 128 * 8) == 1_462_307
    # UNETR: the ViT's 768 channels, first transposed convolution 2^3 -> 128 outputs.
    assert count(unetr) == 92_968_366
    assert count(gasa_unetr) - count(unetr) == _gasa_added(768, (3, 12, 12), 75 * 128 * 8) == 4_227_107


@pytest.mark.parametrize(
    ("cls", "options", "bottleneck_channels"),
    [(VNet, {}, 256), (GASAVNet, {}, 256), (UNETR, TINY_UNETR, 48), (GASAUNETR, TINY_UNETR, 48)],
)
def test_cpu_forward_and_deep_supervision_switch(cls: type, options: dict, bottleneck_channels: int) -> None:
    torch.manual_seed(0)
    network = cls(input_channels=1, num_classes=3, patch_size=(16, 32, 48), **options).eval()
    assert network.bottleneck_size == (1, 2, 3) and network.encoder.output_channels[-1] == bottleneck_channels
    x = torch.randn(2, 1, 16, 32, 48)
    with torch.no_grad():
        logits = network(x)
        assert isinstance(logits, torch.Tensor) and logits.shape == (2, 3, 16, 32, 48)
        network.decoder.deep_supervision = True  # what nnU-Net's trainer sets
        outputs = network(x)
    assert isinstance(outputs, list) and len(outputs) == 1 and torch.equal(outputs[0], logits)
    assert (network.gasa is not None) == cls.__name__.startswith("GASA")


def test_gasa_backbones_train_the_block() -> None:
    torch.manual_seed(0)
    network = GASAUNETR(input_channels=1, num_classes=2, patch_size=(16, 16, 32), **TINY_UNETR)
    x, target = torch.randn(2, 1, 16, 16, 32), torch.randint(0, 2, (2, 16, 16, 32))
    nn.functional.cross_entropy(network(x), target).backward()
    assert network.gasa is not None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in network.gasa.project_x.parameters())


def test_nnunet_builds_them_from_a_plans_entry() -> None:
    """nnU-Net v2's own builder, with the PlainConvUNet keywords a plans file holds plus patch_size."""
    plan_kwargs = network_arch_kwargs("nnunet", SMALL)  # as plans hold them: operations as dotted paths
    arch_kwargs = {
        **plan_kwargs,
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "nonlin": "torch.nn.LeakyReLU",
        "patch_size": [16, 16, 32],
    }
    for name in ("GASACore.network.monai_backbones.GASAVNet", "GASACore.network.baselines.MATPlainConvUNet"):
        patch = [16, 16, 32] if "monai" in name else list(SMALL.patch_size)
        network = get_network_from_plans(
            name,
            {**arch_kwargs, "patch_size": patch},
            ["conv_op", "norm_op", "dropout_op", "nonlin"],
            1,
            3,
            deep_supervision=True,
        )
        network.decoder.deep_supervision = False  # nnUNetTrainer.set_deep_supervision_enabled(False)
        with torch.no_grad():
            assert network.eval()(torch.randn(1, 1, *patch)).shape == (1, 3, *patch)


def test_nnmamba_is_refused_without_cuda_kernels() -> None:
    # This machine has no CUDA device (and no mamba_ssm); a GPU machine without mamba_ssm is refused too.
    with pytest.raises(RuntimeError, match=r"nnMamba needs .*mamba_ssm.*pip install mamba-ssm"):
        NNMamba(input_channels=1, num_classes=3, patch_size=(16, 32, 32))
    with pytest.raises(RuntimeError, match="mamba"):
        GASANNMamba(input_channels=1, num_classes=3, patch_size=(16, 32, 32))


class _TokenLinear(nn.Linear):
    """A token-wise linear map ``(B, L, d) -> (B, L, d)`` in Mamba's place: only to run the rest on CPU."""

    def __init__(self, d_model: int) -> None:
        super().__init__(d_model, d_model)


def test_nnmamba_topology_runs_on_cpu_with_another_sequence_mixer() -> None:
    torch.manual_seed(0)
    plain = NNMamba(input_channels=1, num_classes=3, patch_size=(16, 32, 32), mixer=_TokenLinear, nnmamba_channels=16)
    gasa = GASANNMamba(
        input_channels=1, num_classes=3, patch_size=(16, 32, 32), mixer=_TokenLinear, nnmamba_channels=16
    )
    # Bottleneck 128 channels at 1 x 2 x 2; GASA widens the first decoder convolution (3^3 -> 64) by 75 inputs.
    assert count(gasa) - count(plain) == _gasa_added(128, (1, 2, 2), 75 * 64 * 27)
    shared = [b.mamba for b in plain.encoder.layers[0]][1:]
    assert shared[0] is shared[1]  # one Mamba layer shared by the second and third block, as in nnMamba
    with torch.no_grad():
        for network in (plain.eval(), gasa.eval()):
            assert network(torch.randn(2, 1, 16, 32, 32)).shape == (2, 3, 16, 32, 32)


def test_bad_arguments_are_refused_with_what_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"multiples of the total stride \(16, 16, 16\).*\(16, 32, 40\)"):
        VNet(input_channels=1, num_classes=2, patch_size=(16, 32, 40))
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['bogus'\]"):
        VNet(input_channels=1, num_classes=2, patch_size=(16, 16, 16), bogus=1)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['gasa_dim'\]"):
        VNet(input_channels=1, num_classes=2, patch_size=(16, 16, 16), gasa_dim=10)  # the plain one has no GASA
    with pytest.raises(ValueError, match="input_channels dividing 16"):
        VNet(input_channels=3, num_classes=2, patch_size=(16, 16, 16))
    with pytest.raises(ValueError, match="nnmamba_channels must be at least 16"):
        NNMamba(input_channels=1, num_classes=2, patch_size=(16, 16, 16), nnmamba_channels=8)
    monkeypatch.setitem(sys.modules, "monai.networks.nets", None)  # as if MONAI were not installed
    with pytest.raises(ImportError, match="pip install monai"):
        UNETR(input_channels=1, num_classes=2, patch_size=(16, 16, 16))


def test_the_backbone_modules_import_neither_monai_nor_mamba_ssm() -> None:
    code = (
        "import sys, GASACore.network.monai_backbones, GASACore.network.nnmamba\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('monai', 'mamba_ssm')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.strip() == "[]"


def test_paper_plan_input_size_is_checked() -> None:
    with torch.device("meta"):
        network = VNet(input_channels=1, num_classes=14, patch_size=PAPER_BTCV.patch_size)
    with pytest.raises(ValueError, match=r"built for inputs of spatial size \(48, 192, 192\)"):
        network(torch.zeros(1, 1, 48, 192, 160, device="meta"))


def test_bottleneck_size_of_the_paper_plan_and_of_a_bad_patch() -> None:
    assert bottleneck_size(PAPER_BTCV.patch_size, PAPER_BTCV.strides) == (6, 6, 6)
    assert bottleneck_size((48, 192, 192), [2] * 4) == (3, 12, 12)  # V-Net, UNETR, nnMamba: patch / 16
    with pytest.raises(ValueError, match=r"total stride \(2, 4, 4\).*got \(48, 190, 192\)"):
        bottleneck_size((48, 190, 192), [1, (1, 2, 2), (2, 2, 2)])


@pytest.mark.parametrize(("name", "options"), [("vnet", {}), ("vnet-gasa", {}), ("unetr", TINY_UNETR)])
def test_the_fixed_topology_in_plans_is_the_built_network(name: str, options: dict) -> None:
    spec = NETWORKS[name]
    plan = spec.topology.plan_for((16, 32, 48))
    network = spec.network_class()(input_channels=1, num_classes=3, patch_size=plan.patch_size, **options)
    assert tuple(network.encoder_strides) == plan.strides and network.bottleneck_size == plan.bottleneck_size
    if not options:  # the registry's UNETR is MONAI's default (768-wide ViT); TINY_UNETR only narrows it here
        assert tuple(network.encoder.output_channels) == plan.features_per_stage


def test_nnmambas_fixed_topology_is_the_built_network() -> None:
    plan = Topology.NNMAMBA.plan_for((16, 32, 32))
    network = NNMamba(input_channels=1, num_classes=3, patch_size=(16, 32, 32), mixer=_TokenLinear)
    assert tuple(network.encoder.output_channels) == plan.features_per_stage
    assert tuple(network.encoder_strides) == plan.strides and network.bottleneck_size == (1, 2, 2)


def test_build_network_gives_backbones_their_patch_and_the_block_options() -> None:
    plan = Topology.MONAI_VNET.plan_for((16, 32, 48))
    torch.manual_seed(0)
    network = build_network("vnet-gasa", plan=plan, num_input_channels=1, num_classes=3, dim=10, heads=2)
    assert type(network) is GASAVNet and network.gasa.out_channels == 256 + 30
    with torch.no_grad():
        assert network.eval()(torch.randn(1, 1, 16, 32, 48)).shape == (1, 3, 16, 32, 48)
    architecture = architecture_from_nnunet({"patch_size": [16, 32, 48], **{"architecture": nnunet_architecture(
        "vnet-gasa", plan, GASABlockOptions(dim=10, heads=2))}})  # fmt: skip
    assert architecture.name == "vnet-gasa" and architecture.plan == plan and architecture.block_options.dim == 10


def test_backbones_refuse_plans_that_are_not_theirs() -> None:
    with pytest.raises(ValueError, match=r"vnet \(monai-vnet\) has a fixed topology: expected its plan"):
        build_network("vnet", plan=PAPER_BTCV, num_input_channels=1, num_classes=14)
    bad_patch = dataclasses.replace(Topology.MONAI_UNETR.plan_for((16, 16, 16)), patch_size=(16, 32, 40))
    with pytest.raises(ValueError, match=r"multiple of \(16, 16, 16\) per axis, got \(16, 32, 40\) \(nearest: "):
        build_network("unetr-gasa", plan=bad_patch, num_input_channels=1, num_classes=3)
    with pytest.raises(ValueError, match="nnunet-unet' has no fixed topology"):
        Topology.NNUNET_UNET.plan_for((16, 16, 16))
    assert Topology.MONAI_VNET.fit_patch((28, 28, 40)) == (32, 32, 48) and Topology.NNMAMBA.fit_patch((5, 8, 9)) == (
        16, 16, 16)  # fmt: skip


def test_build_network_refuses_nnmamba_without_cuda_kernels_in_the_one_place() -> None:
    plan = Topology.NNMAMBA.plan_for((16, 32, 32))
    with pytest.raises(RuntimeError, match=r"nnMamba needs the CUDA kernels of mamba_ssm.*pip install mamba-ssm"):
        build_network("nnmamba-gasa", plan=plan, num_input_channels=1, num_classes=3)
