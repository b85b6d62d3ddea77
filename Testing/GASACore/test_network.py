"""The GASA block and the networks: the paper's parameter counts, shapes, equivalence, training, errors."""

from __future__ import annotations

import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet

from GASACore.network import PAPER_BTCV, GASABlock, UNetPlan, build_network

SMALL = UNetPlan(
    patch_size=(8, 16, 16),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(4, 8, 16, 16),
)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def paper_nets() -> dict[str, torch.nn.Module]:
    return {
        name: build_network(name, plan=PAPER_BTCV, num_input_channels=1, num_classes=14)
        for name in ("nnunet", "gasa-unet")
    }


def test_paper_parameter_counts(paper_nets: dict[str, torch.nn.Module]) -> None:
    assert count(paper_nets["nnunet"]) == 30_758_214
    assert count(paper_nets["gasa-unet"]) == 31_817_105 == 30_758_214 + 1_058_891


def test_paper_per_part_counts(paper_nets: dict[str, torch.nn.Module]) -> None:
    net = paper_nets["gasa-unet"]
    block = net.gasa
    projections = sum(count(m) for m in (block.project_x, block.project_y, block.project_z))
    assert projections == 864_075 == 3 * (320 * 25 * 36 + 25)
    assert count(block.qkv) == 1_950
    assert count(block.proj) == 650
    assert block.voxel_embedding is not None and block.voxel_embedding.numel() == 216
    plain_first = paper_nets["nnunet"].decoder.transpconvs[0]
    assert count(net.decoder.transpconvs[0]) - count(plain_first) == 192_000 == 75 * 320 * 2 * 2 * 2
    assert block.spatial_size == (6, 6, 6)


@pytest.mark.parametrize(("mode", "delta"), [("none", -216), ("tokens", -216 + 18 * 25), ("voxels", 0)])
def test_positional_embedding_counts(paper_nets: dict[str, torch.nn.Module], mode: str, delta: int) -> None:
    net = build_network("gasa-unet", plan=PAPER_BTCV, num_input_channels=1, num_classes=14, positional_embedding=mode)
    assert count(net) - count(paper_nets["gasa-unet"]) == delta


def test_qkv_layernorm_adds_its_parameters() -> None:
    plain = GASABlock(channels=320, spatial_size=(6, 6, 6))
    normed = GASABlock(channels=320, spatial_size=(6, 6, 6), qkv_norm=True)
    assert count(normed) - count(plain) == 2 * 75


def test_gasa_l_builds_and_runs() -> None:
    net = build_network("gasa-l", plan=PAPER_BTCV, num_input_channels=1, num_classes=14)
    assert count(net) > count(build_network("nnunet-resenc", plan=PAPER_BTCV, num_input_channels=1, num_classes=14))
    small = build_network("gasa-l", plan=SMALL, num_input_channels=1, num_classes=3).eval()
    with torch.no_grad():
        assert small(torch.randn(1, 1, 8, 16, 16)).shape == (1, 3, 8, 16, 16)


@pytest.mark.parametrize("name", ["nnunet", "gasa-unet", "gasa-l", "nnunet-resenc"])
def test_forward_shapes(name: str) -> None:
    net = build_network(name, plan=SMALL, num_input_channels=2, num_classes=3).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 2, 8, 16, 16))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 8, 16, 16)
    net_ds = build_network(name, plan=SMALL, num_input_channels=2, num_classes=3, deep_supervision=True).eval()
    with torch.no_grad():
        outs = net_ds(torch.randn(2, 2, 8, 16, 16))
    assert [tuple(o.shape) for o in outs] == [(2, 3, 8, 16, 16), (2, 3, 8, 8, 8), (2, 3, 4, 4, 4)]


def test_asymmetric_bottleneck() -> None:
    plan = UNetPlan(
        patch_size=(16, 20, 24),
        strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)),
        kernel_sizes=((3, 3, 3),) * 3,
        features_per_stage=(4, 8, 16),
    )
    net = build_network("gasa-unet", plan=plan, num_input_channels=1, num_classes=2).eval()
    assert net.gasa.spatial_size == (4, 5, 6)
    with torch.no_grad():
        assert net(torch.randn(1, 1, 16, 20, 24)).shape == (1, 2, 16, 20, 24)


def naive_gasa(block: GASABlock, x: torch.Tensor) -> torch.Tensor:
    """Per-slice reference: a loop over planes with explicit matrix products, no convolutions or SDPA."""
    n, _c, sx, sy, sz = x.shape
    wx, wy, wz = block.project_x.weight, block.project_y.weight, block.project_z.weight
    tokens = []
    for b in range(n):
        row = [torch.einsum("cyz,dcyz->d", x[b, :, i], wx[:, :, 0]) + block.project_x.bias for i in range(sx)]
        row += [torch.einsum("cxz,dcxz->d", x[b, :, :, j], wy[:, :, :, 0]) + block.project_y.bias for j in range(sy)]
        row += [torch.einsum("cxy,dcxy->d", x[b, :, :, :, k], wz[..., 0]) + block.project_z.bias for k in range(sz)]
        tokens.append(torch.stack(row))
    t = torch.stack(tokens)  # (N, T, dim)
    if block.token_embedding is not None:
        t = t + block.token_embedding
    q, k, v = (t @ block.qkv.weight.T + block.qkv.bias).chunk(3, dim=-1)
    d = block.dim // block.heads
    heads = []
    for h in range(block.heads):
        qh, kh, vh = (m[..., h * d : (h + 1) * d] for m in (q, k, v))
        heads.append(torch.softmax(qh @ kh.transpose(1, 2) / d**0.5, dim=-1) @ vh)
    out = torch.cat(heads, dim=-1) @ block.proj.weight.T + block.proj.bias  # (N, T, dim)
    g = torch.zeros(n, 3 * block.dim, sx, sy, sz, dtype=x.dtype)
    for i in range(sx):
        g[:, : block.dim, i] = out[:, i, :, None, None]
    for j in range(sy):
        g[:, block.dim : 2 * block.dim, :, j] = out[:, sx + j, :, None, None]
    for k in range(sz):
        g[:, 2 * block.dim :, :, :, k] = out[:, sx + sy + k, :, None, None]
    if block.voxel_embedding is not None:
        g = g + block.voxel_embedding
    return torch.cat((x, g), dim=1)


@pytest.mark.parametrize("mode", ["none", "tokens", "voxels"])
def test_vectorised_block_equals_naive_reference(mode: str) -> None:
    torch.manual_seed(0)
    block = GASABlock(channels=6, spatial_size=(3, 4, 5), dim=10, heads=2, positional_embedding=mode).double().eval()
    with torch.no_grad():
        for param in (block.token_embedding, block.voxel_embedding):
            if param is not None:
                param.normal_()
        x = torch.randn(2, 6, 3, 4, 5, dtype=torch.float64)
        expected = naive_gasa(block, x)
        assert torch.allclose(block(x), expected, atol=1e-10)


def test_plain_dna_state_dict_loads_into_nnunet() -> None:
    kwargs = {  # what nnU-Net v2 passes to dynamic-network-architectures for this plan
        "n_stages": 4,
        "features_per_stage": [4, 8, 16, 16],
        "conv_op": torch.nn.Conv3d,
        "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
        "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]],
        "n_conv_per_stage": [2, 2, 2, 2],
        "n_conv_per_stage_decoder": [2, 2, 2],
        "conv_bias": True,
        "norm_op": torch.nn.InstanceNorm3d,
        "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "nonlin": torch.nn.LeakyReLU,
        "nonlin_kwargs": {"inplace": True},
    }
    torch.manual_seed(1)
    reference = PlainConvUNet(input_channels=1, num_classes=3, deep_supervision=False, **kwargs).eval()
    ours = build_network("nnunet", plan=SMALL, num_input_channels=1, num_classes=3).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert set(ours.state_dict()) == set(reference.state_dict())
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        assert torch.equal(ours(x), reference(x))


def test_gasa_backbone_keys_match_plain_network() -> None:
    plain = build_network("nnunet", plan=SMALL, num_input_channels=1, num_classes=3).state_dict()
    gasa = build_network("gasa-unet", plan=SMALL, num_input_channels=1, num_classes=3).state_dict()
    assert set(plain) == {k for k in gasa if not k.startswith("gasa.")}
    widened = [k for k in plain if plain[k].shape != gasa[k].shape]
    assert widened == ["decoder.transpconvs.0.weight"]


def test_training_steps_lower_the_loss_through_the_block() -> None:
    torch.manual_seed(0)
    net = build_network("gasa-unet", plan=SMALL, num_input_channels=1, num_classes=2, dropout=0.0)
    x = torch.randn(2, 1, 8, 16, 16)
    target = (x[:, 0] > 0.5).long()
    optimiser = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    before = {k: v.clone() for k, v in net.gasa.state_dict().items()}
    losses = []
    for _ in range(8):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), target)
        loss.backward()
        assert net.gasa.project_z.weight.grad is not None and net.gasa.project_z.weight.grad.abs().sum() > 0
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    changed = [k for k, v in net.gasa.state_dict().items() if not torch.equal(v, before[k])]
    assert {"project_x.weight", "project_y.weight", "project_z.weight", "qkv.weight", "proj.weight"} <= set(changed)


def test_dropout_only_in_training() -> None:
    block = GASABlock(channels=4, spatial_size=(2, 2, 2), dim=4, heads=2)
    x = torch.randn(1, 4, 2, 2, 2)
    block.eval()
    with torch.no_grad():
        assert torch.equal(block(x), block(x))
        assert torch.equal(block(x)[:, :4], x)


def test_wrong_input_size_names_expected_and_given() -> None:
    net = build_network("gasa-unet", plan=SMALL, num_input_channels=1, num_classes=2)
    with pytest.raises(ValueError, match=r"\(8, 16, 16\).*\(1, 1, 8, 16, 32\)"):
        net(torch.randn(1, 1, 8, 16, 32))
    plain = build_network("nnunet", plan=SMALL, num_input_channels=1, num_classes=2)
    with pytest.raises(ValueError, match=r"\(8, 16, 16\)"):
        plain(torch.randn(1, 1, 16, 16, 16))


def test_construction_errors() -> None:
    with pytest.raises(ValueError, match="multiple of heads"):
        build_network("gasa-unet", plan=SMALL, num_input_channels=1, num_classes=2, dim=10, heads=3)
    with pytest.raises(ValueError, match="positive"):
        GASABlock(channels=0, spatial_size=(2, 2, 2))
    with pytest.raises(ValueError, match="spatial_size"):
        GASABlock(channels=4, spatial_size=(2, 0, 2))
    with pytest.raises(ValueError, match="patch_size"):
        UNetPlan(
            patch_size=(8, -16, 16),
            strides=SMALL.strides,
            kernel_sizes=SMALL.kernel_sizes,
            features_per_stage=SMALL.features_per_stage,
        )
    tiny = UNetPlan(
        patch_size=(2, 16, 16),
        strides=SMALL.strides,
        kernel_sizes=SMALL.kernel_sizes,
        features_per_stage=SMALL.features_per_stage,
    )
    with pytest.raises(ValueError, match="at least 1 voxel"):
        build_network("gasa-unet", plan=tiny, num_input_channels=1, num_classes=2)
    with pytest.raises(ValueError, match="unknown network"):
        build_network("swin-unetr", plan=SMALL, num_input_channels=1, num_classes=2)
    with pytest.raises(ValueError, match=r"unetr \(monai-unetr\) needs a patch size that is a multiple of"):
        build_network("unetr", plan=SMALL, num_input_channels=1, num_classes=2)  # a U-Net plan: not UNETR's
    with pytest.raises(ValueError, match="positional_embedding"):
        build_network("gasa-unet", plan=SMALL, num_input_channels=1, num_classes=2, positional_embedding="rope")
    with pytest.raises(ValueError, match="has no block, so it takes no block options"):
        build_network("nnunet", plan=SMALL, num_input_channels=1, num_classes=2, heads=5)


def test_plan_round_trips_through_json() -> None:
    assert UNetPlan.from_dict(PAPER_BTCV.to_dict()) == PAPER_BTCV
    assert PAPER_BTCV.bottleneck_size == (6, 6, 6)
