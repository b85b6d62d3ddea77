"""The ``onednn-bf16`` CPU backend: bfloat16 convolutions against float32 oneDNN on a real CT window of the trained
demo model, weights converted once and never modified (a reloaded fold gets fresh copies), the bfloat16
instance norm against float64, ``auto``'s choice from the CPU's capabilities, and the fallbacks to float32.

Tolerances: bfloat16 keeps 8 bits of mantissa, so activations carry a relative rounding of 2^-9 per layer;
on the demo model's logits (magnitudes up to ~20) the largest difference to float32 measured 0.24-0.35 on four
real windows: 1.0 absolute is allowed, and argmax agreement >= 99.9% (measured 99.991-100%). The bfloat16
instance norm must be within one bfloat16 rounding (2^-8 relative) of float64's result.
"""

from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from GASACore.inference.cpu_capability import (
    CpuCapability,
    amx_bf16_in_capabilities,
    amx_bf16_in_cpuinfo_flags,
    auto_cpu_backend,
    detect_cpu_capability,
)
from GASACore.inference.cpu_runtime import (
    CHANNELS_LAST,
    CpuBackend,
    LowPrecisionWeights,
    OneDNNConvolutions,
    instance_norm_channels_last,
    instance_norm_channels_last_,
    prepare_cpu_forward,
    resolve_cpu_backend,
)
from GASACore.inference.lean_unet import lean_unet_forward

BF16_LOGIT_ATOL = 1.0
MIN_AGREEMENT = 0.999
NO_BF16 = CpuCapability(onednn=True, onednn_bf16=False, amx_bf16=False)
#: What ``onednn-bf16`` runs here: bfloat16 where oneDNN has bf16 kernels (every AVX-512 CPU), else float32.
HERE = CpuBackend.ONEDNN_BF16 if detect_cpu_capability().onednn_bf16 else CpuBackend.ONEDNN


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(1) == b.argmax(1)).double().mean())


def test_bf16_forward_of_the_trained_demo_model_on_a_real_ct_window(demo_and_window) -> None:
    network, window, reference = demo_and_window
    before = copy.deepcopy(network.state_dict())
    forward = prepare_cpu_forward(network, input_shape=window.shape, backend="onednn-bf16")
    fp32 = prepare_cpu_forward(network, input_shape=window.shape, backend="onednn")
    with torch.inference_mode():
        got, exact = forward(window), fp32(window)
        with OneDNNConvolutions(dtype=torch.bfloat16) as mode:
            lean_unet_forward(network)(window)  # the backend's forward: the GASA bottleneck in float32
    assert forward.backend is HERE and forward.requested is CpuBackend.ONEDNN_BF16
    assert got.dtype == torch.float32 and got.is_contiguous() and got.shape == reference.shape
    # every convolution (the head in float32): the 24 of the network, the lean forward running each of the 4
    # decoder stages' first convolution as two (upsampled and skip inputs, no concatenation)
    assert mode.routed == 28
    assert float((got - exact).abs().max()) <= BF16_LOGIT_ATOL
    assert _agreement(got, exact) >= MIN_AGREEMENT and _agreement(got, reference) >= MIN_AGREEMENT
    state = network.state_dict()  # the module is not modified: float32 weights, same values
    assert all(state[k].dtype == v.dtype and torch.equal(state[k], v) for k, v in before.items())


def test_weight_copies_are_made_once_and_follow_a_reloaded_fold(demo_and_window) -> None:
    network, window, _ = demo_and_window
    conv = network.encoder.stages[0][0].convs[0].conv
    cache = LowPrecisionWeights(torch.bfloat16)
    first = cache(conv.weight)
    assert first.dtype == torch.bfloat16 and cache(conv.weight) is first and len(cache) == 1
    with torch.inference_mode():
        assert cache(conv.weight[:, :1]) is cache(conv.weight[:, :1])  # views of parameters are kept too
    fold_0 = copy.deepcopy(network.state_dict())
    fold_1 = {k: v * 0.5 if v.is_floating_point() else v for k, v in fold_0.items()}
    forward = prepare_cpu_forward(network, input_shape=window.shape, backend="onednn-bf16")
    try:
        with torch.inference_mode():
            forward(window)
        network.load_state_dict(fold_1)  # another fold, in place: the prepared forward must see it
        renewed = cache(conv.weight)
        assert renewed is not first and torch.equal(renewed, conv.weight.to(torch.bfloat16))
        with torch.inference_mode():
            again = forward(window)
            fresh = prepare_cpu_forward(network, input_shape=window.shape, backend="onednn-bf16")(window)
        assert torch.equal(again, fresh)
    finally:
        network.load_state_dict(fold_0)
    assert conv.weight.dtype == torch.float32


@pytest.mark.parametrize("shape", [(1, 8, 40, 36, 44), (2, 16, 12, 10, 12)])
def test_bf16_instance_norm_rounds_once(shape) -> None:
    torch.manual_seed(0)
    x = (torch.randn(shape) * 2 + 30).contiguous(memory_format=CHANNELS_LAST).to(torch.bfloat16)
    weight, bias = torch.rand(shape[1]) + 0.5, torch.randn(shape[1])
    expected = F.instance_norm(x.double(), weight=weight.double(), bias=bias.double(), eps=1e-5)
    for got in (
        instance_norm_channels_last(x, weight, bias, 1e-5),
        instance_norm_channels_last_(x.clone(), weight, bias, 1e-5),
    ):
        assert got.dtype == torch.bfloat16 and got.is_contiguous(memory_format=CHANNELS_LAST)
        assert bool(((got.double() - expected).abs() <= 2**-8 * expected.abs() + 1e-6).all())


@pytest.mark.parametrize(
    ("capability", "backend", "reason"),
    [
        (CpuCapability(onednn=True, onednn_bf16=True, amx_bf16=True), CpuBackend.ONEDNN_BF16, "AMX bf16 units"),
        (CpuCapability(onednn=True, onednn_bf16=True, amx_bf16=False), CpuBackend.ONEDNN, "no AMX bf16 units"),
        (CpuCapability(onednn=True, onednn_bf16=False, amx_bf16=True), CpuBackend.ONEDNN, "no bf16 kernels"),
        (CpuCapability(onednn=False, onednn_bf16=False, amx_bf16=False), CpuBackend.EAGER, "no oneDNN"),
    ],
    ids=["amx", "avx512-without-amx", "no-bf16-kernels", "no-onednn"],
)
def test_auto_follows_the_cpu_capability(capability: CpuCapability, backend: CpuBackend, reason: str) -> None:
    chosen, why = auto_cpu_backend(capability)
    assert chosen is backend and why.startswith("auto: ") and reason in why
    assert resolve_cpu_backend("auto", capability=capability) is backend
    assert resolve_cpu_backend("onednn", capability=capability) is CpuBackend.ONEDNN  # a request is kept


SAPPHIRE_RAPIDS = "flags : fpu avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8"
COOPER_LAKE = "flags : fpu avx512f avx512bw avx512_bf16 avx512_vnni"  # bf16 dot products, no AMX


def test_amx_detection_from_given_flags() -> None:
    assert amx_bf16_in_cpuinfo_flags(SAPPHIRE_RAPIDS) and not amx_bf16_in_cpuinfo_flags(COOPER_LAKE)
    assert not amx_bf16_in_cpuinfo_flags("flags : fpu amx_tile")  # tiles without bf16
    caps = {"amx_tile": True, "amx_bf16": True, "avx512_bf16": True}
    assert amx_bf16_in_capabilities(caps, tiles_enabled=True)
    assert not amx_bf16_in_capabilities(caps, tiles_enabled=False)  # the kernel refused the tile state
    assert not amx_bf16_in_capabilities({"avx512_bf16": True}, tiles_enabled=True)
    assert not amx_bf16_in_capabilities({"architecture": "arm64", "bf16": True}, tiles_enabled=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/cpuinfo is Linux's")
def test_detection_agrees_with_proc_cpuinfo() -> None:
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    assert detect_cpu_capability().amx_bf16 == amx_bf16_in_cpuinfo_flags(flags)


def test_bf16_without_bf16_kernels_falls_back_to_float32_onednn(demo_and_window) -> None:
    network, window, reference = demo_and_window
    forward = prepare_cpu_forward(network, input_shape=window.shape, backend="onednn-bf16", capability=NO_BF16)
    with torch.inference_mode():
        got = forward(window)
    assert forward.backend is CpuBackend.ONEDNN and "float32 onednn" in forward.reason
    assert float((got - reference).abs().max()) <= 1e-3  # float32 exactness
    auto = prepare_cpu_forward(network, input_shape=window.shape, backend="auto", capability=NO_BF16)
    assert auto.backend is CpuBackend.ONEDNN and "no AMX bf16 units" in auto.reason


def test_a_failing_bf16_convolution_falls_back_to_float32_onednn(
    demo_and_window, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """oneDNN refusing bfloat16 (simulated) at the first call: that call and the later ones run float32 oneDNN."""
    network, window, reference = demo_and_window
    real = torch.mkldnn_convolution

    def float32_only(x, *args, **kwargs):
        if x.dtype == torch.bfloat16:
            raise RuntimeError("simulated: no bf16 primitive")
        return real(x, *args, **kwargs)

    forward = prepare_cpu_forward(network, input_shape=window.shape, backend="onednn-bf16")
    if forward.backend is not CpuBackend.ONEDNN_BF16:
        pytest.skip("oneDNN has no bf16 kernels on this CPU: covered by the test above")
    monkeypatch.setattr(torch, "mkldnn_convolution", float32_only)
    with caplog.at_level(logging.WARNING), torch.inference_mode():
        first, second = forward(window), forward(window)
    assert forward.backend is CpuBackend.ONEDNN and "simulated: no bf16 primitive" in forward.reason
    assert float((first - reference).abs().max()) <= 1e-3 and torch.equal(first, second)
    assert [r.message.count("onednn-bf16 -> onednn") for r in caplog.records] == [1]
