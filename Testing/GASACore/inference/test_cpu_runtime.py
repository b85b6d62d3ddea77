"""CPU runtime: oneDNN routing and the channels-last instance norm against PyTorch's own operators, the trained
demo model on a real CT window (eager vs oneDNN vs OpenVINO), fallbacks, and the OpenVINO model cache.

Tolerances: oneDNN computes the same float32 convolutions in another order, so outputs agree to float32
rounding (measured <= 5e-5 on logits up to ~20); the tests allow 1e-3 absolute on logits and 1e-4 on single
layers. OpenVINO fuses normalisation and differs more (measured 4e-4 on the demo model): 2e-2 allowed.
Argmax agreement must be >= 99.9% (measured 100%).
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from GASACore.inference.cpu_capability import detect_cpu_capability
from GASACore.inference.cpu_openvino import model_cache_key
from GASACore.inference.cpu_runtime import (
    CHANNELS_LAST,
    CpuBackend,
    OneDNNConvolutions,
    instance_norm_channels_last,
    prepare_cpu_forward,
    resolve_cpu_backend,
)

LOGIT_ATOL = 1e-3
LAYER_ATOL = 1e-4
OPENVINO_ATOL = 2e-2
MIN_AGREEMENT = 0.999


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(1) == b.argmax(1)).double().mean())


CONVOLUTIONS = [
    (nn.Conv3d(3, 8, 3, padding=1), (1, 3, 9, 10, 11)),
    (nn.Conv3d(8, 16, 3, stride=2, padding=1), (2, 8, 9, 10, 11)),
    (nn.Conv3d(8, 8, (1, 3, 3), padding=(0, 1, 1), groups=2), (1, 8, 5, 6, 7)),
    (nn.Conv3d(8, 4, 3, padding=2, dilation=2, bias=False), (1, 8, 7, 6, 5)),
    (nn.Conv3d(1, 8, 3, padding=1), (1, 1, 12, 10, 12)),
    (nn.ConvTranspose3d(16, 8, 2, stride=2), (1, 16, 4, 5, 6)),
    (nn.ConvTranspose3d(16, 8, (1, 2, 2), stride=(1, 2, 2), bias=False), (1, 16, 4, 5, 6)),
    (nn.ConvTranspose3d(8, 8, 3, stride=2, padding=1, output_padding=1), (2, 8, 4, 5, 6)),
]

CONVOLUTION_IDS = [f"{type(module).__name__}-{index}" for index, (module, _) in enumerate(CONVOLUTIONS)]


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(("module", "shape"), CONVOLUTIONS, ids=CONVOLUTION_IDS)
def test_every_3d_convolution_runs_on_onednn_with_equal_output(module: nn.Module, shape, channels_last: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape)
    with torch.inference_mode():
        expected = module(x)
        with OneDNNConvolutions(channels_last=channels_last) as mode:
            got = module(x)
    assert mode.routed == 1
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=LAYER_ATOL, rtol=0)
    assert got.is_contiguous(memory_format=CHANNELS_LAST) == (channels_last and got.shape[1] > 1)


def test_what_onednn_cannot_take_passes_through_unchanged() -> None:
    conv = nn.Conv3d(2, 3, 3, padding=1)
    same = nn.Conv3d(2, 3, 3, padding="same")
    cases = [
        (conv.double(), torch.randn(1, 2, 5, 6, 7, dtype=torch.float64)),  # float64
        (same.float(), torch.randn(1, 2, 5, 6, 7)),  # padding="same"
        (copy.deepcopy(conv).float(), torch.randn(2, 5, 6, 7)),  # unbatched 4-D input
    ]
    for module, x in cases:
        with torch.inference_mode(), OneDNNConvolutions() as mode:
            got = module(x)
        assert mode.routed == 0
        assert torch.equal(got, module(x).detach())
    trained = nn.Conv3d(2, 3, 3, padding=1)
    with OneDNNConvolutions() as mode:  # gradients wanted: PyTorch's path, so that backward works
        trained(torch.randn(1, 2, 5, 6, 7)).sum().backward()
    assert mode.routed == 0 and trained.weight.grad is not None


@pytest.mark.parametrize("shape", [(1, 16, 40, 36, 44), (2, 8, 12, 10, 12)])
def test_channels_last_instance_norm_is_accurate(shape) -> None:
    """Against a float64 reference, on values with a large mean (where one-pass float32 sums fail)."""
    torch.manual_seed(1)
    x = (torch.randn(shape) * 2 + 20 + 20 * torch.randn(shape[0], shape[1], 1, 1, 1)).contiguous(
        memory_format=CHANNELS_LAST
    )
    weight, bias = torch.rand(shape[1]) + 0.5, torch.randn(shape[1])
    expected = F.instance_norm(x.double(), weight=weight.double(), bias=bias.double(), eps=1e-5)
    got = instance_norm_channels_last(x, weight, bias, 1e-5)
    assert got.is_contiguous(memory_format=CHANNELS_LAST)
    assert float((got.double() - expected).abs().max()) < 1e-5
    plain = instance_norm_channels_last(x, None, None, 1e-5)
    torch.testing.assert_close(plain, F.instance_norm(x.contiguous(), eps=1e-5), atol=1e-5, rtol=0)


def test_onednn_on_a_real_ct_window_with_the_trained_demo_model(demo_and_window) -> None:
    network, window, reference = demo_and_window
    forward = prepare_cpu_forward(network, input_shape=window.shape, backend="onednn")
    with torch.inference_mode():
        got = forward(window)
        with OneDNNConvolutions() as mode:
            network(window)
    assert forward.backend is CpuBackend.ONEDNN and forward.reason == ""
    assert got.is_contiguous()  # plain layout for the caller, whatever ran inside
    # 18 encoder/decoder convolutions (5 stages of 2, 4 decoder stages of 2), 4 transposed (the first, widened
    # by GASA, runs as two: backbone inputs and GASA inputs, see BottleneckTransposedConv), 1 segmentation head
    assert mode.routed == 24
    assert float((got - reference).abs().max()) <= LOGIT_ATOL
    assert _agreement(got, reference) >= MIN_AGREEMENT


def test_backends_resolve_and_bad_requests_are_refused() -> None:
    # auto: onednn-bf16 on CPUs with AMX bf16 units, else onednn (every x86-64 torch build has oneDNN)
    expected = CpuBackend.ONEDNN_BF16 if detect_cpu_capability().amx_bf16 else CpuBackend.ONEDNN
    assert resolve_cpu_backend("auto") is expected
    assert resolve_cpu_backend(CpuBackend.EAGER) is CpuBackend.EAGER
    with pytest.raises(ValueError, match=r"one of \['auto', 'eager', 'onednn', 'onednn-bf16', 'openvino'\], got 'mkl'"):
        resolve_cpu_backend("mkl")
    with pytest.raises(ValueError, match=r"5 positive sizes \(B, C, X, Y, Z\), got \(1, 48, 40, 48\)"):
        prepare_cpu_forward(nn.Identity(), input_shape=(1, 48, 40, 48))


def test_eager_backend_is_plain_pytorch(demo_and_window) -> None:
    network, window, reference = demo_and_window
    forward = prepare_cpu_forward(network, input_shape=window.shape, backend="eager")
    with torch.inference_mode():
        assert torch.equal(forward(window), reference)


def test_a_failing_onednn_falls_back_to_eager_once(
    demo_and_window, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A torch build whose oneDNN convolution raises (simulated): the call is redone in PyTorch, logged."""
    network, window, reference = demo_and_window

    def broken(*args, **kwargs):
        raise RuntimeError("simulated oneDNN failure")

    forward = prepare_cpu_forward(network, input_shape=window.shape, backend="onednn")
    monkeypatch.setattr(torch, "mkldnn_convolution", broken)
    with caplog.at_level(logging.WARNING), torch.inference_mode():
        first, second = forward(window), forward(window)
    assert torch.equal(first, reference) and torch.equal(second, reference)
    assert forward.backend is CpuBackend.EAGER and forward.requested is CpuBackend.ONEDNN
    assert "simulated oneDNN failure" in forward.reason
    assert [r.message.count("onednn -> eager") for r in caplog.records] == [1]


def test_errors_of_the_network_itself_propagate_and_keep_the_backend(demo_and_window) -> None:
    network, window, _ = demo_and_window
    forward = prepare_cpu_forward(network, input_shape=window.shape, backend="onednn")
    with pytest.raises(ValueError, match=re.escape(str(tuple(window.shape[2:])))), torch.inference_mode():
        forward(window[..., :32])  # the network accepts its patch size only
    assert forward.backend is CpuBackend.ONEDNN


class _Histogram(nn.Module):
    """A network with an operator OpenVINO cannot convert (``torch.histc``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + torch.histc(y, bins=4).sum()


def test_openvino_falls_back_when_it_cannot_take_the_network(tmp_path: Path) -> None:
    """Unconvertible operator (or OpenVINO not installed): eager, with the reason, and equal outputs."""
    network, x = _Histogram().eval(), torch.randn(1, 1, 4, 5, 6)
    root = logging.getLogger()
    root_before = (root.level, list(root.handlers))
    forward = prepare_cpu_forward(network, input_shape=x.shape, backend="openvino", cache_dir=tmp_path)
    assert (root.level, list(root.handlers)) == root_before  # OpenVINO's failed conversion leaves logging alone
    assert forward.backend is CpuBackend.EAGER and forward.requested is CpuBackend.OPENVINO
    assert "OpenVINO could not prepare the network" in forward.reason
    with torch.inference_mode():
        assert torch.equal(forward(x), network(x))
    assert not list(tmp_path.glob("*.xml"))


def test_cache_key_follows_weights_shape_and_versions() -> None:
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv3d(1, 4, 3), nn.InstanceNorm3d(4, affine=True))
    key = model_cache_key(network, (1, 1, 8, 8, 8), ("2026.4", "2.13"))
    assert key == model_cache_key(copy.deepcopy(network), (1, 1, 8, 8, 8), ("2026.4", "2.13"))
    changed = copy.deepcopy(network)
    with torch.no_grad():
        changed[0].weight[0, 0, 0, 0, 0] += 1e-6
    assert model_cache_key(changed, (1, 1, 8, 8, 8), ("2026.4", "2.13")) != key
    assert model_cache_key(network, (2, 1, 8, 8, 8), ("2026.4", "2.13")) != key
    assert model_cache_key(network, (1, 1, 8, 8, 8), ("2026.5", "2.13")) != key


@pytest.mark.slow
def test_openvino_on_a_real_ct_window_and_its_cache(demo_and_window, tmp_path: Path) -> None:
    """OpenVINO converts the demo model (seconds), agrees with PyTorch, and a second run reads its cache."""
    pytest.importorskip("openvino", reason="OpenVINO is an optional backend: pip install openvino")
    network, window, reference = demo_and_window
    forward = prepare_cpu_forward(network, input_shape=window.shape, backend="openvino", cache_dir=tmp_path)
    assert forward.backend is CpuBackend.OPENVINO, forward.reason
    pair = torch.cat([window, window])  # another shape than compiled for: runs in PyTorch
    with torch.inference_mode():
        got, from_pytorch = forward(window), forward(pair)
    assert forward.backend is CpuBackend.OPENVINO
    torch.testing.assert_close(from_pytorch, torch.cat([reference, reference]), atol=LOGIT_ATOL, rtol=0)
    assert float((got - reference).abs().max()) <= OPENVINO_ATOL
    assert _agreement(got, reference) >= MIN_AGREEMENT
    cached = list(tmp_path.glob("*.xml"))
    assert len(cached) == 1 and cached[0].with_suffix(".bin").is_file()
    again = prepare_cpu_forward(network, input_shape=window.shape, backend="openvino", cache_dir=tmp_path)
    with torch.inference_mode():
        assert torch.equal(again(window), got)
    assert list(tmp_path.glob("*.xml")) == cached


def test_onednn_lean_forward_of_the_trained_demo_model_on_a_real_ct_window(demo_and_window) -> None:
    network, window, reference = demo_and_window
    got = prepare_cpu_forward(network, input_shape=window.shape, backend=CpuBackend.ONEDNN)
    with torch.inference_mode():
        logits = got(window)
    assert logits.is_contiguous() and float((logits - reference).abs().max()) < LOGIT_ATOL
    assert float((logits.argmax(1) == reference.argmax(1)).double().mean()) >= 0.999
