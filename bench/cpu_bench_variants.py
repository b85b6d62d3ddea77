"""The CPU execution variants that ``cpu_conv_bench.py`` compares, the networks and real CT windows it uses.

Each variant turns a network (or layer) and example windows ``(B, 1, X, Y, Z)`` into a :class:`Prepared` call
that predicts ``batch`` windows; ``build_s`` is the one-off preparation time (tracing, compiling, exporting).
Run as ``python bench/cpu_bench_variants.py --child BACKEND THREADS PLAN WINDOWS`` it times one thread
configuration in a fresh process (OpenMP reads its environment only when torch is imported) and prints JSON.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from GASACore.inference.cpu_runtime import OneDNNConvolutions, prepare_cpu_forward  # noqa: E402
from GASACore.inference.windows import pad_to_patch  # noqa: E402
from GASACore.network import UNetPlan, build_network  # noqa: E402

DEMO = ROOT / "Resources" / "models" / "gasa-demo-btcv"
SAMPLE_CT = ROOT / "Resources" / "SampleData" / "example_ct.nii.gz"
CL = torch.channels_last_3d


@dataclass
class Prepared:
    call: Callable[[], torch.Tensor]
    batch: int = 1
    build_s: float = 0.0


def _plan(patch: tuple[int, int, int], features: tuple[int, ...]) -> UNetPlan:
    n = len(features)
    return UNetPlan(
        patch_size=patch, strides=((1, 1, 1),) + ((2, 2, 2),) * (n - 1), kernel_sizes=((3, 3, 3),) * n,
        features_per_stage=features,
    )  # fmt: skip


PLANS: dict[str, tuple[str, UNetPlan]] = {
    "nnunet-16-64": ("nnunet", _plan((64, 64, 64), (16, 32, 64, 128, 256))),
    "gasa-16-128": ("gasa-unet", _plan((128, 112, 128), (16, 32, 64, 128, 256))),
    "gasa-32-64": ("gasa-unet", _plan((64, 64, 64), (32, 64, 128, 256))),
}


def build_plan(name: str) -> tuple[nn.Module, tuple[int, int, int]]:
    """``demo``: the bundled demo model with its trained weights; else a He-initialised network (seed 0)."""
    if name == "demo":
        from GASACore.bundle import load_model

        bundle = load_model(DEMO)
        network = bundle.build_network()
        network.load_state_dict(bundle.load_fold(bundle.folds[0], network))
        return network.eval(), bundle.patch_size
    arch, plan = PLANS[name]
    torch.manual_seed(0)
    return build_network(arch, plan=plan, num_input_channels=1, num_classes=14).eval(), plan.patch_size


def ct_windows(patch: tuple[int, int, int], count: int) -> torch.Tensor:
    """``count`` windows ``(count, 1, *patch)`` of the sample CT pre-processed as the demo model does it."""
    from GASACore.bundle import load_model
    from GASACore.io import read_image
    from GASACore.preprocessing import preprocess

    image = read_image(SAMPLE_CT)
    data, _ = preprocess(image.array[None], image.geometry.spacing_zyx, load_model(DEMO).preprocessing)
    padded, _ = pad_to_patch(torch.from_numpy(data), patch)
    spare = [s - p for s, p in zip(padded.shape[1:], patch, strict=True)]
    fractions = np.linspace(0.5, 0.0, count) if count > 1 else [0.5]
    windows = []
    for k, fraction in enumerate(fractions):
        starts = [round(fraction * s) if (k + a) % 2 == 0 else round((1 - fraction) * s) for a, s in
                  enumerate(spare)]  # fmt: skip
        windows.append(padded[(slice(None), *(slice(b, b + p) for b, p in zip(starts, patch, strict=True)))])
    return torch.stack(windows).contiguous()


def network_flops(network: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds x 2 of one forward pass (convolutions, matrix products, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        network(x)
    return int(counter.get_total_flops())


def layer_block(c_in: int, c_out: int) -> nn.Module:
    """nnU-Net's ConvDropoutNormReLU: Conv3d 3x3x3 (bias) + InstanceNorm3d (affine) + LeakyReLU(0.01)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, padding=1), nn.InstanceNorm3d(c_out, eps=1e-5, affine=True), nn.LeakyReLU(0.01, True)
    ).eval()


def _timed_build(build: Callable[[], Callable[[], torch.Tensor]], batch: int = 1) -> Prepared:
    start = time.perf_counter()
    call = build()
    with torch.inference_mode():
        call()  # the first call compiles / JIT-optimises: part of the build
    return Prepared(call, batch, time.perf_counter() - start)


def eager(net: nn.Module, x: torch.Tensor, batch: int = 1) -> Prepared:
    xb = x[:batch].contiguous()
    return _timed_build(lambda: lambda: net(xb), batch)


def onednn(net: nn.Module, x: torch.Tensor, batch: int = 1, *, channels_last: bool = True) -> Prepared:
    """The engine's path: every 3D convolution on oneDNN (channels-last activations unless told otherwise)."""
    xb = x[:batch].contiguous()
    if channels_last:
        forward = prepare_cpu_forward(net, input_shape=xb.shape, backend="onednn")
        return _timed_build(lambda: lambda: forward(xb), batch)

    def call() -> torch.Tensor:
        with OneDNNConvolutions(channels_last=False):
            return net(xb)

    return _timed_build(lambda: call, batch)


def onednn_bf16(net: nn.Module, x: torch.Tensor, batch: int = 1) -> Prepared:
    """The engine's ``onednn-bf16`` backend: bfloat16 convolutions routed to oneDNN (AMX), float32 logits."""
    xb = x[:batch].contiguous()
    forward = prepare_cpu_forward(net, input_shape=xb.shape, backend="onednn-bf16")
    if forward.backend.value != "onednn-bf16":
        raise RuntimeError(f"onednn-bf16 fell back to {forward.backend.value}: {forward.reason}")
    return _timed_build(lambda: lambda: forward(xb), batch)


def bf16_autocast(net: nn.Module, x: torch.Tensor) -> Prepared:
    """``torch.autocast("cpu", bfloat16)`` around the channels-last network (PyTorch's own bf16 dispatch)."""
    net_cl, x1 = copy.deepcopy(net).to(memory_format=CL), x[:1].contiguous(memory_format=CL)

    def call() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return net_cl(x1).float()

    return _timed_build(lambda: call)


def channels_last(net: nn.Module, x: torch.Tensor) -> Prepared:
    """Network and input in channels_last_3d, PyTorch's own dispatch."""
    net_cl, x1 = copy.deepcopy(net).to(memory_format=CL), x[:1]
    return _timed_build(lambda: lambda: net_cl(x1.contiguous(memory_format=CL)))


class _MkldnnConvDenseIO(nn.Module):
    """``torch.utils.mkldnn.to_mkldnn``'s Conv3d (weights pre-packed) between dense tensors."""

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        from torch.utils.mkldnn import to_mkldnn

        self.conv = to_mkldnn(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.to_mkldnn()).to_dense()


def mkldnn_modules(net: nn.Module, x: torch.Tensor) -> Prepared:
    def build() -> Callable[[], torch.Tensor]:
        from GASACore.network import GASABlock

        converted = copy.deepcopy(net)
        gasa = [name + "." for name, m in converted.named_modules() if isinstance(m, GASABlock)]
        for name, module in list(converted.named_modules()):
            if type(module) is nn.Conv3d and not name.startswith(tuple(gasa)):  # GASA reads its weights
                parent_name, _, child = name.rpartition(".")
                setattr(converted.get_submodule(parent_name), child, _MkldnnConvDenseIO(module))
        return lambda: converted(x[:1])

    return _timed_build(build)


def jit_freeze(net: nn.Module, x: torch.Tensor) -> Prepared:
    def build() -> Callable[[], torch.Tensor]:
        with torch.no_grad():
            traced = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x[:1])))
        return lambda: traced(x[:1])

    return _timed_build(build)


def inductor(net: nn.Module, x: torch.Tensor) -> Prepared:
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True  # weights as constants: oneDNN weight pre-packing and conv fusions
    torch._dynamo.reset()
    compiled = torch.compile(copy.deepcopy(net))
    return _timed_build(lambda: lambda: compiled(x[:1]))


def onnxruntime(net: nn.Module, x: torch.Tensor) -> Prepared:
    import onnxruntime as ort

    def build() -> Callable[[], torch.Tensor]:
        path = Path(tempfile.mkdtemp()) / "net.onnx"
        with torch.no_grad():
            torch.onnx.export(net, (x[:1],), str(path), dynamo=False, opset_version=17)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x[:1].numpy()}
        return lambda: torch.from_numpy(session.run(None, feed)[0])

    return _timed_build(build)


def openvino(net: nn.Module, x: torch.Tensor, batch: int = 1, cache: Path | None = None) -> Prepared:
    """The engine's OpenVINO backend (conversion and compilation are the build time)."""
    xb = x[:batch].contiguous()

    def build() -> Callable[[], torch.Tensor]:
        forward = prepare_cpu_forward(net, input_shape=xb.shape, backend="openvino", cache_dir=cache)
        if forward.backend.value != "openvino":
            raise RuntimeError(f"OpenVINO fell back to {forward.backend.value}: {forward.reason}")
        return lambda: forward(xb)

    return _timed_build(build, batch)


LAYER_VARIANTS: dict[str, Callable[[nn.Module, torch.Tensor], Prepared]] = {
    "eager": eager,
    "onednn-plain": lambda n, x: onednn(n, x, channels_last=False),
    "onednn": onednn,
    "onednn-bf16": onednn_bf16,
    "bf16-autocast": bf16_autocast,
    "channels_last": channels_last,
    "eager-b2": lambda n, x: eager(n, x, 2),
    "eager-b4": lambda n, x: eager(n, x, 4),
    "onednn-b2": lambda n, x: onednn(n, x, 2),
}
NETWORK_VARIANTS: dict[str, Callable[[nn.Module, torch.Tensor], Prepared]] = {
    **LAYER_VARIANTS,
    "onednn-b4": lambda n, x: onednn(n, x, 4),
    "to_mkldnn": mkldnn_modules,
    "jit-freeze": jit_freeze,
    "inductor": inductor,
    "onnxruntime": onnxruntime,
    "openvino": openvino,
    "openvino-b2": lambda n, x: openvino(n, x, 2),
}


def child(backend: str, threads: int, plan: str, count: int) -> dict[str, Any]:
    """Time ``count`` forward passes over distinct CT windows in this process's thread configuration."""
    torch.set_num_threads(threads)
    network, patch = build_plan(plan)
    windows = ct_windows(patch, count=4)
    cache = Path(tempfile.gettempdir()) / f"gasa-bench-openvino-{os.getuid()}"
    forward = prepare_cpu_forward(network, input_shape=windows[:1].shape, backend=backend, cache_dir=cache)
    if forward.backend.value != backend:
        raise RuntimeError(f"{backend} fell back to {forward.backend.value}: {forward.reason}")
    times = []
    with torch.inference_mode():
        forward(windows[:1])
        for k in range(count):
            start = time.perf_counter()
            forward(windows[k % 4 : k % 4 + 1])
            times.append(time.perf_counter() - start)
    return {"backend": backend, "threads": threads, "seconds_per_window": statistics.median(times), "times": times}


class PreparedNetwork(nn.Module):
    """A network whose forward runs through :func:`prepare_cpu_forward` (how the engine will call it)."""

    def __init__(self, network: nn.Module, input_shape: tuple[int, ...], backend: str) -> None:
        super().__init__()
        self.network = network
        self.forward_pass = prepare_cpu_forward(network, input_shape=input_shape, backend=backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_pass(x)


def demo_child(backend: str, threads: int, tta: bool, labels_out: Path) -> dict[str, Any]:
    """The demo model's window stage on the sample CT (as ``gasa-segment`` runs it); saves the argmax."""
    from GASACore.bundle import load_model
    from GASACore.inference import SlidingWindowConfig, predict_sliding_window
    from GASACore.io import read_image
    from GASACore.preprocessing import preprocess

    torch.set_num_threads(threads)
    bundle = load_model(DEMO)
    network = bundle.build_network()
    network.load_state_dict(bundle.load_fold(bundle.folds[0], network))
    image = read_image(SAMPLE_CT)
    data, _ = preprocess(image.array[None], image.geometry.spacing_zyx, bundle.preprocessing)
    start = time.perf_counter()
    prepared = PreparedNetwork(network.eval(), (1, 1, *bundle.patch_size), backend).eval()
    config = SlidingWindowConfig(patch_size=bundle.patch_size, mirror_axes=bundle.mirror_axes if tta else (),
                                 device=torch.device("cpu"), num_threads=threads)  # fmt: skip
    logits = predict_sliding_window(prepared, torch.from_numpy(data), num_classes=14, config=config)
    seconds = time.perf_counter() - start
    np.save(labels_out, logits.argmax(0).to(torch.uint8).numpy())
    return {"backend": prepared.forward_pass.backend.value, "threads": threads, "tta": tta, "seconds": seconds}


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))))
    elif len(sys.argv) == 6 and sys.argv[1] == "--demo":
        print(json.dumps(demo_child(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "tta", Path(sys.argv[5]))))
    else:
        raise SystemExit(f"usage: {sys.argv[0]} --child BACKEND THREADS PLAN WINDOWS | "
                         "--demo BACKEND THREADS tta|no-tta LABELS.npy (used by cpu_conv_bench.py)")  # fmt: skip
