"""What the sliding-window stage holds in memory, and whether float16 logit sums are exact enough.

Part ``memory`` (the 300x300x168 CT-like case of ``engine_bench.py``, its plan: 2.5 x 1.5 x 1.5 mm, windows
64x128x128, 14 classes): each stage runs in a fresh process that first loads the pre-processed image, then
reports its peak resident memory above that baseline (sampled every 2 ms):
  forward-eager / forward-onednn  one forward pass of the engine_bench network (PlainConvUNet 32-320)
  loop-fp32                        ``predict_sliding_window`` with a 1x1x1 network: what the loop itself holds
  loop-fp16                        the same loop with pre-normalised float16 logit sums (written out here)
  loop-engine                      ``predict_sliding_window`` with the engine's CPU default (float16 sums)
  restore-fp32 / restore-fp16      ``restore_segmentation`` of float32 / float16 logits
Part ``fp16``: the trained demo model on two real CTs (the sample CT and the DICOM series of another patient),
no TTA: argmax agreement and logit differences against float32 sums, from the same window predictions, of
nnU-Net's float16 sums (each ``logits * gaussian`` rounded into a float16 sum, divided by the float32 weight
sums at the end) and of the proposed pre-normalised float16 sums (``logits * gaussian / weight_sum``).

    nice -n 10 python bench/window_memory_bench.py                 # both parts (~5 min on 2 cores)
    nice -n 10 python bench/window_memory_bench.py --parts fp16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from GASACore.inference import SlidingWindowConfig, gaussian_importance, pad_to_patch, window_slicers  # noqa: E402
from GASACore.inference.cpu_runtime import OneDNNConvolutions  # noqa: E402

DEMO = ROOT / "Resources" / "models" / "gasa-demo-btcv"
SAMPLE_CT = ROOT / "Resources" / "SampleData" / "example_ct.nii.gz"
DICOM_CT = ROOT.parent / "shared" / "data" / "totalsegmentator" / "example_ct_dicom"
PATCH = (64, 128, 128)
CLASSES = 14
STAGES = ("forward-eager", "forward-onednn", "loop-fp32", "loop-fp16", "loop-engine", "restore-fp32", "restore-fp16")


def _rss_mb() -> float:
    """Resident memory now, MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


class _PeakSampler:
    """Highest resident memory (MB) while the block runs, sampled every 2 ms by a thread."""

    def __enter__(self) -> _PeakSampler:
        self.peak, self._stop = _rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


class _OneDNN(nn.Module):
    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with OneDNNConvolutions():
            return self.network(x)


def _large_case(folder: Path) -> tuple[Path, Path]:
    """Pre-process engine_bench's 300x300x168 CT for its plan; save the image (.npy) and what restore needs."""
    import pickle

    from engine_bench import make_large_ct

    from GASACore.io import read_image
    from GASACore.preprocessing import PreprocessingConfig, preprocess

    image = read_image(make_large_ct(folder / "large.nii.gz"))
    body = image.array[image.array > -500].astype(np.float64)
    props = {"mean": body.mean(), "std": body.std(), "percentile_00_5": np.percentile(body, 0.5),
             "percentile_99_5": np.percentile(body, 99.5), "min": body.min(), "max": body.max(),
             "median": np.median(body)}  # fmt: skip
    config = PreprocessingConfig(spacing=(2.5, 1.5, 1.5), patch_size=PATCH, intensity_properties=(props,))
    data, properties = preprocess(image.array[None], image.geometry.spacing_zyx, config)
    np.save(folder / "data.npy", data)
    (folder / "restore.pkl").write_bytes(pickle.dumps((properties, config)))
    return folder / "data.npy", folder / "restore.pkl"


def _weights(shape: tuple[int, ...], patch: tuple[int, int, int], gaussian: torch.Tensor) -> torch.Tensor:
    weights = torch.zeros(shape, dtype=torch.float32)
    for slicer in window_slicers(shape, patch, 0.5):
        weights[slicer[1:]] += gaussian
    return weights


def _accumulate_fp16(network: nn.Module, data: torch.Tensor) -> torch.Tensor:
    """The proposal: float16 sums of pre-normalised contributions ``logits * gaussian / weight_sum``.

    The weight sums depend only on the window positions, so they are known before the first window; every
    contribution is then a fraction of a logit (the fractions of a voxel add up to 1), so nothing underflows
    float16 (nnU-Net's ``logits * gaussian`` does, by 1e-10 at window corners) and no division pass is left.
    """
    padded, unpad = pad_to_patch(data, PATCH)
    gaussian = gaussian_importance(PATCH)
    weights = _weights(padded.shape[1:], PATCH, gaussian)
    logits = torch.zeros((CLASSES, *padded.shape[1:]), dtype=torch.float16)
    with torch.inference_mode():
        for slicer in window_slicers(padded.shape[1:], PATCH, 0.5):
            logits[slicer] += network(padded[slicer][None])[0] * (gaussian / weights[slicer[1:]])
    return logits[unpad]


def child(stage: str, data_path: Path, restore_path: Path) -> dict[str, float]:
    """Run one stage in this fresh process; peak RSS above the loaded image, in MB."""
    import pickle

    from GASACore.inference import predict_sliding_window
    from GASACore.network import UNetPlan, build_network
    from GASACore.preprocessing import restore_segmentation

    torch.set_num_threads(1)
    data = torch.from_numpy(np.load(data_path))
    tiny = nn.Conv3d(1, CLASSES, 1).eval()
    logits = None
    if stage.startswith("restore"):  # the logits exist before the stage starts, as in the pipeline
        logits = torch.from_numpy(np.load(data_path.with_name(f"logits-{stage[-4:]}.npy")))
    network: nn.Module = tiny
    if stage.startswith("forward"):
        plan = UNetPlan(patch_size=PATCH, strides=((1, 1, 1),) + ((2, 2, 2),) * 4 + ((1, 2, 2),),
                        kernel_sizes=((3, 3, 3),) * 6, features_per_stage=(32, 64, 128, 256, 320, 320))  # fmt: skip
        network = build_network("nnunet", plan=plan, num_input_channels=1, num_classes=CLASSES).eval()
        network = _OneDNN(network).eval() if stage.endswith("onednn") else network
    window = data[(slice(None), *(slice(0, p) for p in PATCH))][None].contiguous()
    restore = pickle.loads(restore_path.read_bytes()) if logits is not None else None
    baseline, start = _rss_mb(), time.perf_counter()
    with _PeakSampler() as sampler, torch.inference_mode():
        if stage.startswith("forward"):
            network(window)
        elif stage == "loop-fp32":
            predict_sliding_window(tiny, data, num_classes=CLASSES, config=_config())
        elif stage == "loop-fp16":
            _accumulate_fp16(tiny, data)
        elif stage == "loop-engine":  # the engine's CPU default: pre-normalised float16 sums
            predict_sliding_window(tiny, data, num_classes=CLASSES, config=_config("auto"))
        else:
            restore_segmentation(logits, *restore)
    return {"stage": stage, "peak_above_baseline_mb": sampler.peak - baseline, "baseline_mb": baseline,
            "seconds": time.perf_counter() - start, "image_shape": list(data.shape),
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}  # fmt: skip


def _config(logit_sums: str = "fp32") -> SlidingWindowConfig:
    return SlidingWindowConfig(
        patch_size=PATCH, mirror_axes=(), device=torch.device("cpu"), num_threads=1, logit_sums=logit_sums
    )


def part_memory() -> list[dict[str, float]]:
    from GASACore.inference import predict_sliding_window

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data_path, restore_path = _large_case(Path(tmp))
        shape = np.load(data_path, mmap_mode="r").shape
        voxels = int(np.prod(shape[1:]))
        print(f"pre-processed image {shape}: logit sums {CLASSES * voxels * 4 / 2**20:.0f} MB in float32, "
              f"{CLASSES * voxels * 2 / 2**20:.0f} MB in float16; weight sums {voxels * 4 / 2**20:.0f} MB; "
              f"Gaussian map {np.prod(PATCH) * 4 / 2**20:.0f} MB", flush=True)  # fmt: skip
        with torch.inference_mode():
            logits = predict_sliding_window(nn.Conv3d(1, CLASSES, 1).eval(), torch.from_numpy(np.load(data_path)),
                                            num_classes=CLASSES, config=_config())  # fmt: skip
        np.save(data_path.with_name("logits-fp32.npy"), logits.numpy())
        np.save(data_path.with_name("logits-fp16.npy"), logits.half().numpy())
        del logits
        for stage in STAGES:
            command = [sys.executable, __file__, "--child", stage, str(data_path), str(restore_path)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"  {stage:>15}: +{rows[-1]['peak_above_baseline_mb']:7.0f} MB above the loaded image "
                  f"({rows[-1]['seconds']:.1f} s)", flush=True)  # fmt: skip
    return rows


def _demo_logits(path: Path) -> dict[str, torch.Tensor]:
    """The demo model's logits: the engine's (float32), and from the same window predictions float32 sums,
    nnU-Net's float16 sums (``logits * gaussian`` rounded into float16, divided at the end) and the proposed
    pre-normalised float16 sums."""
    from GASACore.bundle import load_model
    from GASACore.inference import predict_sliding_window
    from GASACore.io import read_image
    from GASACore.preprocessing import preprocess

    bundle = load_model(DEMO)
    network = bundle.build_network()
    network.load_state_dict(bundle.load_fold(bundle.folds[0], network))
    network = _OneDNN(network).eval()  # eval on the wrapper: predict_sliding_window restores its mode
    image = read_image(path)
    data, _ = preprocess(image.array[None], image.geometry.spacing_zyx, bundle.preprocessing)
    data = torch.from_numpy(data)
    patch, k = bundle.patch_size, bundle.architecture.num_classes
    config = SlidingWindowConfig(patch_size=patch, mirror_axes=(), device=torch.device("cpu"))
    engine = predict_sliding_window(network, data, num_classes=k, config=config)
    padded, unpad = pad_to_patch(data, patch)
    gaussian = gaussian_importance(patch)
    weights = _weights(padded.shape[1:], patch, gaussian)
    sums = {
        name: torch.zeros((k, *padded.shape[1:]), dtype=dtype)
        for name, dtype in (
            ("fp32", torch.float32),
            ("fp16-nnunet", torch.float16),
            ("fp16-prenormalised", torch.float16),
        )
    }
    with torch.inference_mode():
        for slicer in window_slicers(padded.shape[1:], patch, 0.5):
            prediction = network(padded[slicer][None])[0]
            sums["fp32"][slicer] += prediction * gaussian
            sums["fp16-nnunet"][slicer] += prediction * gaussian
            sums["fp16-prenormalised"][slicer] += prediction * (gaussian / weights[slicer[1:]])
    for name in ("fp32", "fp16-nnunet"):
        for channel in sums[name]:
            channel.copy_(channel / weights)
    return {"engine": engine, **{name: value[unpad].float() for name, value in sums.items()}}


def part_fp16() -> list[dict[str, float]]:
    rows = []
    for name, path in (("sample CT 122x101x112", SAMPLE_CT), ("DICOM CT 512x512x20", DICOM_CT)):
        logits = _demo_logits(path)
        labels = logits["fp32"].argmax(0)
        for variant in ("fp16-nnunet", "fp16-prenormalised"):
            other = logits[variant].argmax(0)
            rows.append({
                "case": name, "variant": variant, "shape": list(labels.shape),
                "local_fp32_vs_engine_max_diff": float((logits["fp32"] - logits["engine"]).abs().max()),
                "max_abs_logit_diff": float((logits[variant] - logits["fp32"]).abs().max()),
                "p99_99_abs_logit_diff": float((logits[variant] - logits["fp32"]).abs().flatten().quantile(0.9999)),
                "argmax_agreement": float((other == labels).double().mean()),
                "foreground_voxels": int((labels > 0).sum()),
                "foreground_disagreements": int(((other != labels) & ((labels > 0) | (other > 0))).sum()),
            })  # fmt: skip
            row = rows[-1]
            print(f"  {name} {variant}: argmax agreement {row['argmax_agreement']:.6f} "
                  f"({row['foreground_disagreements']} of {row['foreground_voxels']} foreground voxels differ), "
                  f"|logit diff| max {row['max_abs_logit_diff']:.2e}, 99.99% {row['p99_99_abs_logit_diff']:.2e} "
                  f"(local float32 loop vs engine {row['local_fp32_vs_engine_max_diff']:.1e})", flush=True)  # fmt: skip
    return rows


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["memory", "fp16"], choices=["memory", "fp16"])
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "window_memory_bench.json")
    args = parser.parse_args()
    report: dict[str, object] = {"torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}
    if "memory" in args.parts:
        print("memory of the window stage (fresh process per stage, 1 thread)", flush=True)
        report["memory"] = part_memory()
    if "fp16" in args.parts:
        print("float16 vs float32 logit sums, trained demo model, no TTA", flush=True)
        report["fp16"] = part_fp16()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
