"""Benchmark: ``restore_segmentation`` vs nnU-Net v2's logits -> segmentation export (not a test).

Each method runs in a fresh subprocess on the same synthetic case (smooth random logits, default
14 classes) so that its peak memory can be read from the process's high-water mark:
``peak extra`` = peak RSS (VmHWM, reset just before the call) minus the RSS just before it, with the
logits already allocated.

    python bench/preprocessing_bench.py                       # 300 x 300 x 168 CT, 14 classes, CPU
    python bench/preprocessing_bench.py --dtype float16 --threads 2
    python bench/preprocessing_bench.py --spacing 5.0 0.8 0.8   # anisotropic: separate-z rule
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    """High-water mark of the resident set since the last ``_reset_peak`` (VmHWM)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:  # "5" resets VmHWM (Linux >= 4.0)
        clear_refs.write("5")


def _plans(target: list[float]) -> dict:
    kwargs = {"order": 1, "order_z": 0, "force_separate_z": None}
    return {
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "foreground_intensity_properties_per_channel": {
            "0": {"mean": 0.0, "std": 1.0, "percentile_00_5": -1.0, "percentile_99_5": 1.0}
        },
        "configurations": {
            "3d_fullres": {
                "spacing": target,
                "patch_size": [48, 192, 192],
                "normalization_schemes": ["CTNormalization"],
                "use_mask_for_norm": [False],
                "resampling_fn_data": "resample_data_or_seg_to_shape",
                "resampling_fn_data_kwargs": {**kwargs, "is_seg": False, "order": 3},
                "resampling_fn_seg": "resample_data_or_seg_to_shape",
                "resampling_fn_seg_kwargs": {**kwargs, "is_seg": True},
                "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
                "resampling_fn_probabilities_kwargs": {**kwargs, "is_seg": False},
                "architecture": {"network_class_name": "unused", "arch_kwargs": {}, "_kw_requires_import": []},
            }
        },
    }


def run_one(args: argparse.Namespace) -> dict:
    """Run one method in this process and return its timing, peak memory and labels' checksum."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from GASACore.preprocessing import PreprocessingConfig, preprocess, restore_segmentation

    torch.set_num_threads(args.threads)
    shape_zyx = tuple(args.shape)
    plans = _plans(list(args.target))
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, **{str(i): i for i in range(1, args.classes)}}}
    config = PreprocessingConfig.from_nnunet(plans, "3d_fullres", dataset)
    _, props = preprocess(np.ones((1, *shape_zyx), dtype=np.float32), args.spacing, config)
    generator = torch.Generator().manual_seed(0)
    coarse = torch.randn((1, args.classes, *[s // 8 for s in props.shape_after_resampling]), generator=generator)
    logits = F.interpolate(coarse, size=props.shape_after_resampling, mode="trilinear")[0].to(
        getattr(torch, args.dtype)
    )
    del coarse
    _reset_peak()
    before = _rss_mb()
    start = time.perf_counter()
    if args.method == "gasa":
        labels = restore_segmentation(logits, props, config, device=args.device)
    else:
        from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        manager = PlansManager({**plans, "dataset_name": "bench", "plans_name": "bench"})
        configuration = manager.get_configuration("3d_fullres")
        labels = convert_predicted_logits_to_segmentation_with_correct_shape(
            logits,
            manager,
            configuration,
            manager.get_label_manager(dataset),
            props.to_nnunet(),
            num_threads_torch=args.threads,
        )
    seconds = time.perf_counter() - start
    peak_extra = _peak_mb() - before
    path = f"/tmp/preprocessing_bench_{args.method}.npy"
    np.save(path, np.asarray(labels))
    return {
        "method": args.method,
        "seconds": round(seconds, 2),
        "peak_extra_mb": round(peak_extra, 1),
        "logits_mb": round(logits.numel() * logits.element_size() / 2**20, 1),
        "grid": list(props.shape_after_resampling),
        "path": path,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=(168, 300, 300), help="input (z, y, x) voxels")
    parser.add_argument("--spacing", type=float, nargs=3, default=(2.0, 0.8, 0.8), help="input (z, y, x) mm")
    parser.add_argument("--target", type=float, nargs=3, default=(2.5, 1.0, 1.0), help="target spacing mm")
    parser.add_argument("--classes", type=int, default=14)
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="torch device for GASACore (default: the logits' device)")
    parser.add_argument("--method", choices=("gasa", "nnunet"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_one(args)))
        return
    results = []
    for method in ("nnunet", "gasa"):
        command = [sys.executable, __file__, *sys.argv[1:], "--method", method]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results.append(json.loads(output))
        print(output)
    import numpy as np

    agree = (np.load(results[0]["path"]) == np.load(results[1]["path"])).mean()
    print(f"identical labels: {100 * agree:.4f}%")


if __name__ == "__main__":
    main()
