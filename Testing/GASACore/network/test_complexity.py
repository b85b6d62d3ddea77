"""The MAC counter: Table 4's 662.9 -> 663.2 G at the paper's plan, and agreement with thop itself.

The paper-plan counts run on the meta device (no computation); the thop comparison runs real forward passes of
small networks through ``thop.profile`` (pytorch-OpCounter 0.1.x, the counter the authors' trainer calls).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
from network_helpers import SMALL, build
from torch import nn

from GASACore.network import PAPER_BTCV, build_network
from GASACore.network.axial_attention import AxialSelfAttention3d
from GASACore.network.cbam import CBAM3d
from GASACore.network.complexity import count_complexity, count_parameters
from GASACore.network.gasa_block import GASABlock
from GASACore.network.medical_axial import MedicalAxialBlock3d
from GASACore.network.monai_backbones import GASAVNet, VNet
from GASACore.network.nnunet_v1 import GASAPlainConvUNetV1, PlainConvUNetV1
from GASACore.network.unets import FixedPatchPlainConvUNet, GASAPlainConvUNet

with warnings.catch_warnings():  # thop 0.1.x imports distutils' deprecated version classes
    warnings.simplefilter("ignore", DeprecationWarning)
    import thop

PAPER_INPUT = (1, 1, 48, 192, 192)

# thop imports distutils and warns about its own deprecated helpers.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:This API is being deprecated:UserWarning"),
]


@pytest.fixture(scope="module")
def paper_counts() -> dict[str, int]:
    networks = {
        "v1": build(PlainConvUNetV1, PAPER_BTCV, meta=True),
        "gasa v1": build(GASAPlainConvUNetV1, PAPER_BTCV, meta=True),
        "v2": build(FixedPatchPlainConvUNet, PAPER_BTCV, meta=True),
        "gasa v2": build(GASAPlainConvUNet, PAPER_BTCV, meta=True),
    }
    return {name: count_complexity(net, PAPER_INPUT).macs for name, net in networks.items()}


def test_table_4_flops_of_nnunet_and_gasa(paper_counts: dict[str, int]) -> None:
    # Table 4: nnU-Net 662.9 G, +GASA 663.2 G (thop MACs / 1e9 of the authors' nnU-Net v1 network).
    assert paper_counts["v1"] == 662_873_739_264
    assert paper_counts["gasa v1"] == 663_210_744_264
    assert abs(paper_counts["v1"] / 1e9 - 662.9) < 0.1 and abs(paper_counts["gasa v1"] / 1e9 - 663.2) < 0.1
    # GASA adds 0.337 G: thop counts the widened transposed conv at its 12^3 x 320 output, times 75 more inputs
    # x 2^3 kernel (331.8 M), the three plane projections 3 x 25 x 320 x 216 (5.2 M) and qkv + proj (45 k).
    added = 12**3 * 320 * 75 * 8 + 3 * 25 * 320 * 216 + 18 * 25 * 75 + 18 * 25 * 25
    assert paper_counts["gasa v1"] - paper_counts["v1"] == added == 337_005_000
    assert paper_counts["gasa v2"] - paper_counts["v2"] == added
    # Our v2 network: 98.5 G fewer (1x3x3 instead of 3x3x3 decoder convs at stage 1's resolution), one head.
    assert paper_counts["v2"] == 564_377_186_304


def test_v1_runs_every_head_as_nnunet_v1_does() -> None:
    with torch.device("meta"):
        v2_all_heads = build_network(
            "nnunet", plan=PAPER_BTCV, num_input_channels=1, num_classes=14, deep_supervision=True
        )
        v2_one_head = build_network("nnunet", plan=PAPER_BTCV, num_input_channels=1, num_classes=14)
    heads = count_complexity(v2_all_heads, PAPER_INPUT).macs - count_complexity(v2_one_head, PAPER_INPUT).macs
    # the four lower-resolution 1x1x1 heads: (48x96x96 x 64 + 48x48x48 x 128 + 24^3 x 256 + 12^3 x 320) x 14
    assert heads == (48 * 96 * 96 * 64 + 48 * 48 * 48 * 128 + 24**3 * 256 + 12**3 * 320) * 14
    v1 = build(PlainConvUNetV1, PAPER_BTCV, meta=True)
    v1.decoder.deep_supervision = True
    assert count_complexity(v1, PAPER_INPUT).macs == 662_873_739_264  # the same with and without


def _thop_macs(network: nn.Module, shape: tuple[int, ...]) -> int:
    macs, _ = thop.profile(network, inputs=(torch.randn(shape),), verbose=False)
    return int(macs)


class _EveryRule(nn.Module):
    """One module of each type thop has a rule for (and two it has none for), wired into one forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, padding=1, groups=2)
        self.batch_norm = nn.BatchNorm3d(4)
        self.leaky = nn.LeakyReLU(0.01)
        self.up = nn.ConvTranspose3d(4, 6, 2, stride=2, bias=False)
        self.instance_norm = nn.InstanceNorm3d(6, affine=True)
        self.plain_norm = nn.InstanceNorm3d(6)
        self.avg = nn.AvgPool3d(2)
        self.adaptive = nn.AdaptiveAvgPool3d(2)
        self.nearest = nn.Upsample(scale_factor=2, mode="nearest")
        self.trilinear = nn.Upsample(scale_factor=2, mode="trilinear")
        self.linear = nn.Linear(6 * 8, 10)
        self.layer_norm = nn.LayerNorm(10)
        self.prelu = nn.PReLU()
        self.softmax = nn.Softmax(dim=1)
        self.elu = nn.ELU()  # no rule: 0
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.leaky(self.batch_norm(self.conv(x)))
        x = self.plain_norm(self.instance_norm(self.up(x)))  # (N, 6, 8, 8, 8)
        x = self.trilinear(self.nearest(self.adaptive(self.avg(x))))  # (N, 6, 8, 8, 8)
        x = self.elu(self.adaptive(x)).flatten(1)
        return self.softmax(self.dropout(self.prelu(self.layer_norm(self.linear(x)))))


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (_EveryRule, (2, 2, 4, 4, 4)),
        (lambda: CBAM3d(channels=16), (2, 16, 3, 4, 5)),
        (lambda: AxialSelfAttention3d(channels=16, projections=True), (2, 16, 3, 4, 5)),
        (lambda: MedicalAxialBlock3d(channels=16, spatial_size=(3, 3, 3)), (2, 16, 3, 3, 3)),
    ],
)
def test_equals_thop(make: Callable[[], nn.Module], shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    network = make()
    ours = count_complexity(network, shape)
    assert ours.macs == _thop_macs(network, shape) > 0
    assert ours.parameters == count_parameters(network) and network.training  # training mode restored


def test_thop_counts_dynamic_network_architectures_convolutions_twice_or_more_we_once() -> None:
    # dynamic-network-architectures registers every conv as ``conv`` and as ``all_modules.0``: thop 0.1.x hooks
    # it twice and visits it twice. nnU-Net v1's Generic_UNet, which the paper counted, registers each once.
    network = build(FixedPatchPlainConvUNet, SMALL, num_classes=3)
    shape = (2, 1, *SMALL.patch_size)
    ours = count_complexity(network, shape).macs
    convs = sum(
        count_complexity(m, (2, m.in_channels, *SMALL.patch_size)).macs
        for m in [network.encoder.stages[0][0].convs[0].conv]
    )
    assert convs == 2 * 8 * 8 * 16 * 16 * 1 * 9  # N x C_out x voxels x C_in x (1 x 3 x 3)
    assert _thop_macs(network, shape) > 2 * ours


def test_gasa_block_differs_from_thop_by_the_projections_the_official_code_runs_as_convolutions() -> None:
    block = GASABlock(channels=16, spatial_size=(3, 4, 5), dim=10, heads=2)
    shape = (2, 16, 3, 4, 5)
    projections = 2 * 10 * 16 * (3 * 4 * 5) * 3  # N x dim x C x (X Y Z), once per axis
    ours = count_complexity(block, shape)
    assert ours.macs - _thop_macs(block, shape) == projections
    assert ours.per_module["GASABlock"] == projections
    assert ours.per_module["qkv"] == 10 * 2 * 12 * 30  # thop's Linear rule: in_features x output elements


def test_gasa_vnet_differs_from_thop_by_the_projections() -> None:
    for cls in (VNet, GASAVNet):
        torch.manual_seed(0)
        network = cls(input_channels=1, num_classes=2, patch_size=(16, 16, 32))
        ours = count_complexity(network, (1, 1, 16, 16, 32))
        assert ours.uncounted == ("ELU",)  # thop has no rule for ELU either
        extra = 0 if cls is VNet else 25 * 256 * 2 * 3  # the GASA projections (bottleneck 1 x 1 x 2)
        assert ours.macs - _thop_macs(network, (1, 1, 16, 16, 32)) == extra


def test_bad_input_shapes_are_refused() -> None:
    network = build(FixedPatchPlainConvUNet, SMALL, num_classes=3)
    with pytest.raises(ValueError, match=r"input_shape must be \(N, C, \*spatial\) with positive sizes, got \(1, 0\)"):
        count_complexity(network, (1, 0))
    with pytest.raises(ValueError, match="has no parameters"):
        count_complexity(nn.ReLU(), (1, 1, 2, 2, 2))
