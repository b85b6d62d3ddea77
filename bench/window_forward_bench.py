"""What one window's CPU forward pass holds in memory and costs, per forward variant and host-memory setting.

The small nnU-Net model of ``engine_bench.py`` (PlainConvUNet 8-128, 48x128x128 windows, 14 classes; its
results folder is built once, or given with ``--model``) on a window of the real sample CT, 1 thread. Every
configuration runs in a fresh process and reports:
  baseline      resident memory after ``import torch`` + GASACore's pipeline imports, model and window loaded
  peak          resident memory above the baseline from the first forward pass on (sampled every millisecond)
  cpu           CPU seconds per window (median of the rounds), page faults per window
  diff          largest logit difference from ``network(x)`` (PyTorch's own path), argmax agreement
Variants: ``plain`` = the network's own forward under the oneDNN routing (the engine before issue 13's memory
work), ``lean`` = ``lean_unet_forward`` (skips and concatenations released once used, in-place norms,
planar 1x1 head). Host memory: ``glibc`` = glibc's and PyTorch's defaults, ``tuned`` = ``GASACore.malloc_env``
(4 MiB fixed mmap threshold, huge pages), ``heap`` = everything on the heap, never trimmed
(``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` 4 GiB), ``mmap1M`` = every block from 1 MiB mapped
(what is in use, ~live memory, but every window faults its memory in again).

    nice -n 15 python bench/window_forward_bench.py                  # builds the model (~4 min), ~3 min more
    nice -n 15 python bench/window_forward_bench.py --model RESULTS_FOLDER --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SAMPLE_CT = ROOT / "Resources" / "SampleData" / "example_ct.nii.gz"
VARIANTS = ("plain", "lean")
HOST = {
    "glibc": {"GASA_MALLOC_TUNING": "0"},
    "tuned": {},
    "heap": {"GASA_MALLOC_TUNING": "0", "MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)},
    "mmap1M": {"GASA_MALLOC_TUNING": "0", "MALLOC_MMAP_THRESHOLD_": str(1 << 20)},
}


def _resident_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


def child(model: Path, variant: str, rounds: int) -> dict:
    """One configuration, measured in this (fresh) process."""
    from GASACore.malloc_env import apply_malloc_defaults

    applied = apply_malloc_defaults()
    import torch

    import GASACore.pipeline  # noqa: F401 - the imports gasa-segment has before its windows run
    from GASACore.bundle import load_model
    from GASACore.inference.cpu_runtime import OneDNNConvolutions
    from GASACore.inference.lean_unet import lean_unet_forward
    from GASACore.io import read_image
    from GASACore.preprocessing import preprocess

    torch.set_num_threads(1)
    after_imports = _resident_mb()
    bundle = load_model(model)
    network = bundle.build_network().eval()
    network.load_state_dict(bundle.load_fold(bundle.folds[0], network))
    image = read_image(SAMPLE_CT)
    data, _ = preprocess(image.array[None], image.geometry.spacing_zyx, bundle.preprocessing)
    starts = [max(0, (s - p) // 2) for s, p in zip(data.shape[1:], bundle.patch_size, strict=True)]
    crop = tuple(slice(b, b + p) for b, p in zip(starts, bundle.patch_size, strict=True))
    window = torch.from_numpy(data[(slice(None), *crop)].copy())[None]
    del data, image
    forward = lean_unet_forward(network) if variant == "lean" else network

    def run() -> torch.Tensor:
        with torch.inference_mode(), OneDNNConvolutions():
            return forward(window).contiguous()

    baseline, peak, done = _resident_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _resident_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    run()  # warm-up (oneDNN primitives, heap): part of the peak, not of the timings
    cpu, faults = [], []
    for _ in range(rounds):
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.thread_time()
        run()
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(time.thread_time() - start)
        faults.append(after.ru_minflt - before.ru_minflt)
    done.set()
    sampler.join()
    with torch.inference_mode():
        logits, reference = run(), network(window)
    diff = float((logits - reference).abs().max())
    agreement = float((logits.argmax(1) == reference.argmax(1)).double().mean())
    return {
        "variant": variant, "malloc_env_applied": applied, "after_imports_mb": after_imports,
        "baseline_mb": baseline, "peak_above_baseline_mb": peak[0] - baseline,
        "cpu_s_per_window": sorted(cpu)[len(cpu) // 2], "page_faults_per_window": sorted(faults)[len(faults) // 2],
        "max_logit_diff": diff, "argmax_agreement": agreement,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="nnU-Net results folder (default: build one)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "window_forward_bench.json")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1], args.rounds)))
        return
    model = args.model
    if model is None:
        from engine_bench import make_model

        model = make_model(Path(tempfile.mkdtemp(prefix="gasa-forward-bench-")) / "model", "small")
    rows = []
    for host, extra in HOST.items():
        for variant in VARIANTS:
            env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "THP_MEM_ALLOC_ENABLE"}
            env |= extra | {"OMP_NUM_THREADS": "1"}
            command = [sys.executable, __file__, "--child", str(model), variant, "--rounds", str(args.rounds)]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            row = json.loads(out.strip().splitlines()[-1]) | {"host": host, "load": round(os.getloadavg()[0], 2)}
            rows.append(row)
            print(
                f"{host:7s} {variant:6s} baseline {row['baseline_mb']:6.0f} MB (imports {row['after_imports_mb']:4.0f})"
                f"  peak +{row['peak_above_baseline_mb']:5.0f} MB  cpu {row['cpu_s_per_window']:.2f} s/window"
                f"  faults {row['page_faults_per_window']:6d}/window  diff {row['max_logit_diff']:.1e}"
                f"  argmax {row['argmax_agreement']:.5f}  load {row['load']}",
                flush=True,
            )
    args.json.write_text(json.dumps({"torch": __import__("torch").__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
