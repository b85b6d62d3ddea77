"""Sliding-window inference: GASACore vs nnU-Net v2's predictor vs MONAI's sliding_window_inference.

Same network (a small PlainConvUNet with random weights, or ``--plan paper`` for the BTCV plan), same
z-scored crop of the real CT, 50% overlap, Gaussian weights, optional mirroring. Reports wall time, the
largest logit difference and the argmax agreement with GASACore. MONAI places its windows and builds its
Gaussian map by its own rules, so it is not expected to agree exactly (91.5% argmax agreement measured on
the default run); nnU-Net differs only by its float16 accumulation (99.92%, differences at the border).

    python bench/sliding_window_bench.py [--mirror] [--threads N] [--device cpu|cuda] [--plan small|paper]
"""

from __future__ import annotations

import argparse
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from GASACore.inference import SlidingWindowConfig, predict_sliding_window
from GASACore.network import PAPER_BTCV, UNetPlan, build_network

SMALL = UNetPlan(
    patch_size=(16, 32, 32),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(4, 8, 16, 16),
)
CT = Path(__file__).resolve().parents[2] / "shared" / "data" / "totalsegmentator" / "example_ct.nii.gz"
NUM_CLASSES = 4


def _crop(size: tuple[int, int, int]) -> torch.Tensor:
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(CT))).astype(np.float32)
    starts = [max((a - s) // 2, 0) for a, s in zip(array.shape, size, strict=True)]
    crop = array[tuple(slice(b, b + s) for b, s in zip(starts, size, strict=True))]
    return torch.from_numpy((crop - crop.mean()) / crop.std())[None].contiguous()


def _nnunet(
    net: torch.nn.Module, image: torch.Tensor, plan: UNetPlan, mirror: bool, device: torch.device
) -> torch.Tensor:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(
        tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror, perform_everything_on_device=device.type == "cuda",
        device=device, verbose=False, allow_tqdm=False,
    )  # fmt: skip
    predictor.network = net
    predictor.allowed_mirroring_axes = (0, 1, 2)
    predictor.configuration_manager = types.SimpleNamespace(patch_size=list(plan.patch_size))
    predictor.label_manager = types.SimpleNamespace(num_segmentation_heads=NUM_CLASSES)
    return predictor.predict_sliding_window_return_logits(image).float().cpu()


def _monai(
    net: torch.nn.Module, image: torch.Tensor, plan: UNetPlan, mirror: bool, device: torch.device
) -> torch.Tensor:
    from monai.inferers import sliding_window_inference

    net = net.to(device).eval()
    x = image[None].to(device)
    flips = [()] + ([(2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)] if mirror else [])
    with torch.inference_mode():
        total = None
        for axes in flips:
            flipped = torch.flip(x, axes) if axes else x
            out = sliding_window_inference(flipped, plan.patch_size, 1, net, overlap=0.5, mode="gaussian")
            out = torch.flip(out, axes) if axes else out
            total = out if total is None else total + out
    return (total / len(flips))[0].float().cpu()  # type: ignore[operator]


def _ours(
    net: torch.nn.Module, image: torch.Tensor, plan: UNetPlan, mirror: bool, device: torch.device
) -> torch.Tensor:
    config = SlidingWindowConfig(
        patch_size=plan.patch_size, mirror_axes=(0, 1, 2) if mirror else (), device=device,
        num_threads=torch.get_num_threads(),
    )  # fmt: skip
    return predict_sliding_window(net, image, num_classes=NUM_CLASSES, config=config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plan", choices=["small", "paper"], default="small")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = SMALL if args.plan == "small" else PAPER_BTCV
    size = (40, 96, 96) if args.plan == "small" else (80, 256, 256)
    image = _crop(size)
    torch.manual_seed(0)
    net = build_network("nnunet", plan=plan, num_input_channels=1, num_classes=NUM_CLASSES).eval()
    device = torch.device(args.device)
    runners: dict[str, Callable[..., torch.Tensor]] = {"gasacore": _ours, "nnunetv2": _nnunet, "monai": _monai}
    results: dict[str, tuple[float, torch.Tensor]] = {}
    for name, runner in runners.items():
        start = time.perf_counter()
        logits = runner(net, image, plan, args.mirror, device)
        results[name] = (time.perf_counter() - start, logits)
    reference = results["gasacore"][1]
    print(f"image {tuple(image.shape)}, patch {plan.patch_size}, mirror {args.mirror}, device {device}, "
          f"threads {torch.get_num_threads()}")  # fmt: skip
    print(f"{'engine':<10} {'seconds':>8} {'max |diff|':>11} {'argmax agree':>13}")
    for name, (seconds, logits) in results.items():
        diff = (logits - reference).abs().max().item()
        agree = (logits.argmax(0) == reference.argmax(0)).float().mean().item()
        print(f"{name:<10} {seconds:>8.2f} {diff:>11.4f} {agree:>13.4%}")


if __name__ == "__main__":
    main()
