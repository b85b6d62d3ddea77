"""Forward-pass time of nnunet vs gasa-unet (and gasa-l) at the paper's BTCV plan, in one run.

Runs the networks interleaved (A, B, A, B, ... with the order alternating every repeat) on the same
random 48x192x192 input so that machine load affects them alike, and reports the median per network and
the ratios to ``nnunet``. Whole-network times on a shared CPU wander by a few per cent, more than the GASA
block costs, so it also times the parts GASA adds or changes - the block and the widened first transposed
convolution against the plain one - many times over at the bottleneck, and reports that added time as a
fraction of the plain network's forward pass.

    python bench/network_bench.py --repeats 7 [--device cpu|cuda] [--threads N] [--networks nnunet gasa-unet]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from GASACore.network import PAPER_BTCV, build_network


def _time_forward(network: torch.nn.Module, x: torch.Tensor) -> float:
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    network(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--networks", nargs="+", default=["nnunet", "gasa-unet", "gasa-l"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randn(1, 1, *PAPER_BTCV.patch_size, device=device)
    nets = {
        name: build_network(name, plan=PAPER_BTCV, num_input_channels=1, num_classes=14).to(device).eval()
        for name in args.networks
    }
    times: dict[str, list[float]] = {name: [] for name in nets}
    with torch.inference_mode():
        for net in nets.values():  # warm-up
            _time_forward(net, x)
        for repeat in range(args.repeats):
            order = list(nets.items()) if repeat % 2 == 0 else list(reversed(nets.items()))
            for name, net in order:
                times[name].append(_time_forward(net, x))
    base = statistics.median(times[args.networks[0]])
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats}")
    print(f"{'network':<10} {'params':>12} {'median s':>9} {'ratio':>7}")
    for name, net in nets.items():
        median = statistics.median(times[name])
        params = sum(p.numel() for p in net.parameters())
        print(f"{name:<10} {params:>12,} {median:>9.3f} {median / base:>7.3f}")
    if "nnunet" in nets and "gasa-unet" in nets:
        added = _added_by_gasa(nets["nnunet"], nets["gasa-unet"], device)
        print(f"time the GASA parts add: {added * 1000:.1f} ms = {added / base:.2%} of nnunet's forward pass")


def _median_time(module: torch.nn.Module, x: torch.Tensor, repeats: int = 50) -> float:
    with torch.inference_mode():
        module(x)
        return statistics.median(_time_forward(module, x) for _ in range(repeats))


def _added_by_gasa(plain: torch.nn.Module, gasa: torch.nn.Module, device: torch.device) -> float:
    """Block time + widened transposed convolution time - plain transposed convolution time (seconds)."""
    channels = gasa.gasa.channels
    bottleneck = torch.randn(1, channels, *gasa.gasa.spatial_size, device=device)
    widened = torch.randn(1, gasa.gasa.out_channels, *gasa.gasa.spatial_size, device=device)
    block = _median_time(gasa.gasa, bottleneck)
    wide = _median_time(gasa.decoder.transpconvs[0], widened)
    narrow = _median_time(plain.decoder.transpconvs[0], bottleneck)
    return block + wide - narrow


if __name__ == "__main__":
    main()
