"""Forward-pass time of nnunet vs gasa-unet (and gasa-l) at the paper's BTCV plan, in one run.

Runs the networks interleaved (A, B, C, A, B, C, ...) on the same random 48x192x192 input so that
machine load affects them alike, and reports the median per network and the ratios to ``nnunet``.

    python bench/network_bench.py --repeats 5 [--device cpu|cuda] [--threads N]
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
    parser.add_argument("--repeats", type=int, default=5)
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
        for _ in range(args.repeats):
            for name, net in nets.items():
                times[name].append(_time_forward(net, x))
    base = statistics.median(times[args.networks[0]])
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats}")
    print(f"{'network':<10} {'params':>12} {'median s':>9} {'ratio':>7}")
    for name, net in nets.items():
        median = statistics.median(times[name])
        params = sum(p.numel() for p in net.parameters())
        print(f"{name:<10} {params:>12,} {median:>9.3f} {median / base:>7.3f}")


if __name__ == "__main__":
    main()
