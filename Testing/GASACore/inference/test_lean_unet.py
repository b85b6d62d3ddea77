"""The lean U-Net forward pass: the same logits as ``network(x)`` (plain, residual-encoder, GASA, deep
supervision; the trained demo model on a real CT window is in ``test_cpu_runtime.py``), less memory held, and
``None`` for networks it does not know; the in-place instance norm and the planar 1x1 convolution it uses.

Tolerance: the lean pass runs the same modules; the decoder's concatenation becomes two convolutions summed and
the norms run in place, so the logits agree to float32 rounding (measured <= 4e-5 on the small nnU-Net model's
logits): 1e-3 absolute allowed, as for the oneDNN routing, and argmax agreement >= 99.9%.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from GASACore.inference.cpu_runtime import OneDNNConvolutions, pointwise_conv_planar
from GASACore.inference.instance_norm import instance_norm_channels_last, instance_norm_channels_last_
from GASACore.inference.lean_unet import lean_unet_forward
from GASACore.network import UNetPlan, build_network

ROOT = Path(__file__).resolve().parents[3]
LOGIT_ATOL = 1e-3
PLAN = UNetPlan(
    patch_size=(16, 32, 32),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(4, 8, 16, 16),
)


def _network(name: str, *, deep_supervision: bool = False) -> nn.Module:
    torch.manual_seed(0)
    network = build_network(name, plan=PLAN, num_input_channels=1, num_classes=3, deep_supervision=deep_supervision)
    with torch.no_grad():  # non-trivial norm affine parameters
        for module in network.modules():
            if isinstance(module, nn.InstanceNorm3d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return network.eval()


def _lean(network: nn.Module, x: torch.Tensor):
    forward = lean_unet_forward(network)
    assert forward is not None
    with torch.inference_mode(), OneDNNConvolutions():
        return forward(x)


@pytest.mark.parametrize("name", ["nnunet", "nnunet-resenc", "gasa-unet"])
def test_lean_forward_equals_the_network(name: str) -> None:
    network = _network(name)
    x = torch.randn(2, 1, *PLAN.patch_size) * 3
    with torch.inference_mode():
        reference = network(x)
    got = _lean(network, x)
    assert got.shape == reference.shape
    assert float((got - reference).abs().max()) < LOGIT_ATOL
    assert float((got.argmax(1) == reference.argmax(1)).double().mean()) >= 0.999
    assert torch.equal(x, x.clone())  # the input is not modified


def test_lean_forward_with_deep_supervision_returns_every_head() -> None:
    network = _network("nnunet", deep_supervision=True)
    x = torch.randn(1, 1, *PLAN.patch_size)
    with torch.inference_mode():
        reference = network(x)
    got = _lean(network, x)
    assert len(got) == len(reference) == 3
    for ours, theirs in zip(got, reference, strict=True):
        assert ours.shape == theirs.shape and float((ours - theirs).abs().max()) < LOGIT_ATOL


def test_lean_forward_checks_the_input_size_as_the_network_does() -> None:
    with pytest.raises(ValueError, match=r"spatial size \(16, 32, 32\)"):
        _lean(_network("nnunet"), torch.randn(1, 1, 16, 32, 30))


def test_unknown_networks_get_no_lean_forward() -> None:
    assert lean_unet_forward(nn.Sequential(nn.Conv3d(1, 2, 3, padding=1))) is None


def test_with_gradients_the_network_itself_runs() -> None:
    network = _network("nnunet").train()
    forward = lean_unet_forward(network)
    x = torch.randn(1, 1, *PLAN.patch_size, requires_grad=True)
    forward(x).sum().backward()  # in-place norms would break autograd: the plain forward ran
    assert x.grad is not None


MEMORY_PROBE = """
import resource, threading, time
from pathlib import Path
import torch
from GASACore.inference.cpu_runtime import OneDNNConvolutions
from GASACore.inference.lean_unet import lean_unet_forward
from GASACore.network import UNetPlan, build_network

def resident():
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20

def peak_above(forward, x):
    with torch.inference_mode(), OneDNNConvolutions():
        forward(x)  # warm-up
        start, peak, done = resident(), [0.0], threading.Event()
        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], resident())
                time.sleep(0.0005)
        thread = threading.Thread(target=sample)
        thread.start()
        forward(x)
        done.set()
        thread.join()
    return peak[0] - start

torch.set_num_threads(1)
plan = UNetPlan(patch_size=(32, 96, 96), strides=((1, 1, 1), (1, 2, 2), (2, 2, 2)),
                kernel_sizes=((3, 3, 3),) * 3, features_per_stage=(8, 16, 32))
network = build_network("nnunet", plan=plan, num_input_channels=1, num_classes=8).eval()
x = torch.randn(1, 1, *plan.patch_size)
print(peak_above(network, x), peak_above(lean_unet_forward(network), x))
"""


def test_lean_forward_holds_less_memory() -> None:
    """In a fresh process whose freed blocks go back to the system (resident memory = memory in use)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MALLOC_MMAP_THRESHOLD_=str(1 << 20), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, check=True, env=env)
    plain, lean = (float(v) for v in out.stdout.split())
    activation = 8 * 32 * 96 * 96 * 4 / 2**20  # one full-resolution activation: 9 MB
    assert lean < plain - 2 * activation, (plain, lean)  # measured: 64 vs 31 MB


def test_in_place_instance_norm_equals_the_out_of_place_one() -> None:
    x = (torch.randn(1, 8, 20, 33, 31) * 4 + 7).contiguous(memory_format=torch.channels_last_3d)
    weight, bias = torch.rand(8) + 0.5, torch.randn(8)
    expected = instance_norm_channels_last(x, weight, bias, 1e-5)
    reference = torch.nn.functional.instance_norm(x.double(), weight=weight.double(), bias=bias.double(), eps=1e-5)
    got = instance_norm_channels_last_(x, weight, bias, 1e-5)
    assert got is x and torch.equal(got, expected)
    assert float((got.double() - reference).abs().max()) < 1e-5


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last_3d])
def test_pointwise_convolution_is_planar_and_equal(layout) -> None:
    x = torch.randn(2, 8, 5, 6, 7).contiguous(memory_format=layout)
    conv = nn.Conv3d(8, 14, 1)
    with torch.no_grad():  # as under the oneDNN mode, which routes only tensors without autograd
        for bias in (conv.bias, None):
            got = pointwise_conv_planar(x, conv.weight, bias)
            assert got.is_contiguous()
            assert float((got - torch.nn.functional.conv3d(x, conv.weight, bias)).abs().max()) < 1e-5
