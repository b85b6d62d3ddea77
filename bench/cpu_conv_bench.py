"""Why small 3D convolutions are slow on the CPU, and what makes them fast: one run, interleaved repeats.

Measures forward time per window and effective GFLOP/s of
  (a) single Conv3d + InstanceNorm3d + LeakyReLU blocks at 8-64 channels and typical window/stage sizes,
  (b) whole U-Nets from ``GASACore.network.build_network`` (the bundled demo model with its trained weights,
      and nnunet / gasa-unet plans like the next demo model's),
under: PyTorch's default dispatch, oneDNN forced for every convolution (GASACore.inference.cpu_runtime),
channels_last_3d, torch.utils.mkldnn.to_mkldnn, torch.jit.trace + freeze + optimize_for_inference,
torch.compile (inductor, freezing), ONNX Runtime and OpenVINO (when installed), and batches of 2 / 4
windows; then (c) the thread rule: 1 vs 2 threads, OpenMP wait policies, with the other core idle or busy,
each configuration in a fresh process; (d) the demo model's whole window stage on the sample CT (with and
without mirroring TTA) per backend, with its argmax agreement over the whole CT. Every variant's output is
compared with the default path on a real CT window (the sample CT, pre-processed for the demo model):
largest absolute difference and argmax agreement. Timings on this shared machine are noisy: read the medians
and the ratios in one run.

    nice -n 10 python bench/cpu_conv_bench.py                    # everything (~40 min on 2 shared cores)
    nice -n 10 python bench/cpu_conv_bench.py --quick            # a few layers, demo + one plan, no compilers
    nice -n 10 python bench/cpu_conv_bench.py --sections threads --rounds 3
    nice -n 10 python bench/cpu_conv_bench.py --sections networks demo --plans demo

The layer and network sections run 1 thread by default and report CPU seconds too: on a shared machine those
are what the work costs, while wall times follow the other programs' load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from cpu_bench_variants import (  # noqa: E402
    LAYER_VARIANTS,
    NETWORK_VARIANTS,
    Prepared,
    build_plan,
    ct_windows,
    layer_block,
    network_flops,
)

RESULTS = ROOT / "bench" / "results"
LAYERS = [  # (C_in, C_out, (D, H, W)): first layers (C_in = 1), stages of the demo and of 64-128 voxel patches
    (1, 8, (48, 40, 48)), (8, 8, (48, 40, 48)), (16, 16, (24, 20, 24)), (32, 32, (12, 10, 12)), (64, 64, (6, 5, 6)),
    (1, 16, (96, 96, 96)), (16, 16, (96, 96, 96)), (32, 32, (48, 48, 48)), (64, 64, (24, 24, 24)),
    (8, 8, (24, 20, 24)), (16, 16, (12, 10, 12)), (32, 32, (24, 20, 24)), (64, 64, (12, 10, 12)),
]  # fmt: skip
QUICK_PLANS = ("demo", "nnunet-16-64")
FULL_PLANS = ("demo", "nnunet-16-64", "gasa-16-128", "gasa-32-64")


def _time(call: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - start, time.process_time() - cpu


def _interleaved(calls: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds of each call, timed ``repeats`` times in turn (after one warm-up each)."""
    for call in calls.values():
        call()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(_time(call))
    wall = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
    cpu = {name: statistics.median(t[1] for t in ts) for name, ts in times.items()}
    return wall, cpu


def _agreement(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    diff = float((output - reference).abs().max())
    agree = float((output.argmax(1) == reference.argmax(1)).double().mean())
    return diff, agree


def bench_layers(repeats: int, quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    layers = LAYERS[:5] if quick else LAYERS
    with torch.inference_mode():
        for c_in, c_out, size in layers:
            block = layer_block(c_in, c_out)
            x = torch.randn(4, c_in, *size)
            prepared = {name: make(block, x) for name, make in LAYER_VARIANTS.items()}
            reference = block(x[:1])
            wall, cpu = _interleaved({name: p.call for name, p in prepared.items()}, repeats)
            flops = 2 * c_in * c_out * 27 * size[0] * size[1] * size[2]
            for name, p in prepared.items():
                median = wall[name] / p.batch
                diff, _ = _agreement(p.call()[:1], reference)
                rows.append({
                    "layer": f"{c_in}->{c_out} @ {'x'.join(map(str, size))}", "variant": name, "ms": 1e3 * median,
                    "cpu_ms": 1e3 * cpu[name] / p.batch, "gflops": flops / median / 1e9,
                    "speedup": wall["eager"] / median, "max_abs_diff": diff,
                })  # fmt: skip
                print(f"  {rows[-1]['layer']:>22} {name:>20}: {rows[-1]['ms']:8.2f} ms (cpu {rows[-1]['cpu_ms']:8.2f})"
                      f" {rows[-1]['gflops']:6.1f} GFLOP/s  x{rows[-1]['speedup']:5.2f}  diff {diff:.1e}",
                      flush=True)  # fmt: skip
    return rows


#: Variants measured on the larger plans (all of them on the demo model): the rest add nothing but minutes.
CORE_VARIANTS = ("eager", "onednn-plain", "onednn", "onednn-bf16", "openvino")


def bench_networks(plans: tuple[str, ...], repeats: int, skip: set[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for plan_name in plans:
        network, patch = build_plan(plan_name)
        windows = ct_windows(patch, count=4)
        flops = network_flops(network, windows[:1])
        with torch.inference_mode():
            reference = network(windows[:1])
        prepared: dict[str, Prepared] = {}
        for name, make in NETWORK_VARIANTS.items():
            if name in skip or (plan_name != "demo" and name not in CORE_VARIANTS):
                continue
            try:
                prepared[name] = make(network, windows)
            except Exception as err:  # a backend that fails is a result, reported as such
                rows.append({"plan": plan_name, "variant": name, "error": f"{type(err).__name__}: {err}"[:300]})
                print(f"  {plan_name} {name}: FAILED {rows[-1]['error']}", flush=True)
        with torch.inference_mode():
            wall, cpu = _interleaved({name: p.call for name, p in prepared.items()}, repeats)
        for name, p in prepared.items():
            with torch.inference_mode():
                output = p.call()[:1]
            diff, agree = _agreement(output, reference)
            median = wall[name] / p.batch
            rows.append({
                "plan": plan_name, "variant": name, "build_s": p.build_s, "s_per_window": median,
                "cpu_s_per_window": cpu[name] / p.batch, "gflops": flops / median / 1e9,
                "speedup": wall["eager"] / median, "max_abs_diff": diff,
                "max_abs_logit": float(reference.abs().max()), "argmax_agreement": agree,
            })  # fmt: skip
            print(f"  {plan_name:>13} {name:>22}: {median:7.3f} s/window (cpu {cpu[name] / p.batch:7.3f}) "
                  f"{rows[-1]['gflops']:6.1f} GFLOP/s "
                  f"x{rows[-1]['speedup']:5.2f} build {p.build_s:6.1f} s diff {diff:.1e} argmax {agree:.5f}",
                  flush=True)  # fmt: skip
        del prepared
    return rows


THREAD_ENVS = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin0": {"GOMP_SPINCOUNT": "0"},
    "bind": {"OMP_PROC_BIND": "true", "OMP_PLACES": "cores"},
}


def _thread_configs(with_openvino: bool) -> list[tuple[str, int, str, bool]]:
    configs = []
    for busy in (False, True):
        configs.append(("onednn", 1, "default", busy))
        configs += [("onednn", 2, env, busy) for env in THREAD_ENVS]
        configs.append(("eager", 1, "default", busy))
        configs.append(("eager", 2, "default", busy))
        if with_openvino:
            configs += [("openvino", 1, "default", busy), ("openvino", 2, "default", busy)]
    return configs


def _spinner() -> subprocess.Popen[bytes]:
    """A process that keeps one core busy (as another user's job would) until it is terminated."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def bench_threads(rounds: int, plan: str, windows: int) -> list[dict[str, Any]]:
    try:
        import openvino  # noqa: F401

        with_openvino = True
    except ImportError:
        with_openvino = False
    results: dict[tuple[str, int, str, bool], list[float]] = {}
    for _ in range(rounds):
        for backend, threads, env_name, busy in _thread_configs(with_openvino):
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_", "MKL_"))}
            env.update(THREAD_ENVS[env_name], PYTHONPATH=str(ROOT))
            command = [sys.executable, str(Path(__file__).resolve().parent / "cpu_bench_variants.py"), "--child",
                       backend, str(threads), plan, str(windows)]  # fmt: skip
            spinner = _spinner() if busy else None
            try:
                out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            finally:
                if spinner is not None:
                    spinner.terminate()
                    spinner.wait()
            seconds = json.loads(out.strip().splitlines()[-1])["seconds_per_window"]
            results.setdefault((backend, threads, env_name, busy), []).append(seconds)
            print(f"  {backend:>8} threads {threads} {env_name:>8} other core {'busy' if busy else 'idle'}: "
                  f"{seconds:.3f} s/window (load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    return [
        {"backend": b, "threads": t, "env": e, "other_core": "busy" if busy else "idle",
         "s_per_window": statistics.median(v), "samples": v}
        for (b, t, e, busy), v in results.items()
    ]  # fmt: skip


def bench_demo(threads: int, backends: tuple[str, ...], tta_settings: tuple[bool, ...]) -> list[dict[str, Any]]:
    """The demo model's window stage on the sample CT, each backend in a fresh process with OpenMP waiting
    passively (as gasa-segment sets it); argmax agreement of the whole CT with the first backend's result."""
    import numpy as np

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for tta in tta_settings:
            labels = {}
            for backend in backends:
                out = Path(tmp) / f"{backend}-{tta}.npy"
                env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
                command = [sys.executable, str(Path(__file__).resolve().parent / "cpu_bench_variants.py"), "--demo",
                           backend, str(threads), "tta" if tta else "no-tta", str(out)]  # fmt: skip
                result = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
                rows.append(json.loads(result.strip().splitlines()[-1]))
                labels[backend] = np.load(out)
                agreement = float((labels[backend] == labels[backends[0]]).mean())
                rows[-1]["argmax_agreement_with_" + backends[0]] = agreement
                print(f"  {'TTA' if tta else 'no TTA':>6} {backend:>8} {threads} threads: "
                      f"{rows[-1]['seconds']:6.1f} s, "
                      f"argmax agreement with {backends[0]} {agreement:.6f} "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", default=["layers", "networks", "threads", "demo"])
    parser.add_argument("--plans", nargs="+", default=None, help=f"default: {' '.join(FULL_PLANS)}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the thread configurations")
    parser.add_argument("--skip", nargs="*", default=[], help="network variants to leave out, e.g. inductor")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the layer and network sections")
    parser.add_argument("--demo-threads", type=int, default=2, help="threads of the demo section")
    parser.add_argument(
        "--demo-backends",
        nargs="+",
        default=["eager", "onednn", "onednn-bf16", "openvino"],
        help="backends of the demo section; the first is the reference of the argmax agreement",
    )
    parser.add_argument("--demo-tta", choices=("off", "on", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="few layers, demo + one plan, no compilers")
    parser.add_argument("--output", type=Path, default=RESULTS / "cpu_conv_bench.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plans = tuple(args.plans or (QUICK_PLANS if args.quick else FULL_PLANS))
    skip = set(args.skip) | ({"inductor", "jit-freeze", "onnxruntime"} if args.quick else set())
    report: dict[str, Any] = {
        "torch": torch.__version__, "threads": args.threads, "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"), "load_at_start": os.getloadavg()[0],
    }  # fmt: skip
    if "layers" in args.sections:
        print("(a) Conv3d + InstanceNorm + LeakyReLU blocks, per window", flush=True)
        report["layers"] = bench_layers(args.repeats, args.quick)
    if "networks" in args.sections:
        print("(b) whole networks, per window", flush=True)
        report["networks"] = bench_networks(plans, args.repeats, skip)
    if "threads" in args.sections:
        print("(c) threads, each configuration in a fresh process (demo model)", flush=True)
        report["threads"] = bench_threads(args.rounds, "demo", 8)
    if "demo" in args.sections:
        print("(d) the demo model's window stage on the sample CT (fresh process each, OMP_WAIT_POLICY=PASSIVE)")
        tta = {"off": (False,), "on": (True,), "both": (False, True)}[args.demo_tta]
        report["demo"] = bench_demo(args.demo_threads, tuple(args.demo_backends), tta)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
