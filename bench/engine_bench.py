"""End-to-end inference benchmark: gasa-segment vs nnU-Net v2's nnUNetPredictor (vs MONAI for the window stage).

Same nnU-Net v2 results folder (a PlainConvUNet, patch 64x128x128 by default, He-initialised weights with
a fixed seed), same CT, same settings (step 0.5, Gaussian, no TTA, CPU), in one run. Every tool runs in
its own fresh Python process so that import time and peak resident memory (ru_maxrss) are its own.

Cases: the real sample CT (122x101x112, 3 mm) and a CT-like volume of 300x300x168 voxels made by
resampling it (B-spline) to 1.22 x 1.01 x 2.0 mm; the model's plan resamples both to 2.5 x 1.5 x 1.5 mm
(z, y, x). Also measured: gasa-segment with --skip-air (windows that hold only air are skipped).

    python bench/engine_bench.py                 # full run (~40 min on 2 CPU cores)
    python bench/engine_bench.py --quick         # small plan, for checking the script
    python bench/engine_bench.py --tools gasa nnunet --cases sample
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Testing" / "GASACore" / "engine"))
SAMPLE_CT = ROOT / "Resources" / "SampleData" / "example_ct.nii.gz"
TOOLS = ("nnunet", "gasa", "gasa-skip-air", "monai")


def make_large_ct(target: Path) -> Path:
    """The sample CT resampled (B-spline) onto a 300x300x168 grid: a CT-like volume of realistic size."""
    image = sitk.ReadImage(str(SAMPLE_CT))
    size = (300, 300, 168)
    spacing = [sp * n / m for sp, n, m in zip(image.GetSpacing(), image.GetSize(), size, strict=True)]
    resampled = sitk.Resample(
        image, size, sitk.Transform(), sitk.sitkBSpline, image.GetOrigin(), spacing, image.GetDirection(), -1024
    )
    sitk.WriteImage(sitk.Cast(resampled, sitk.sitkInt16), str(target))
    return target


def make_model(root: Path, quick: bool) -> Path:
    """An nnU-Net v2 results folder with a He-initialised PlainConvUNet (14 classes)."""
    import nnunet_fixture as fixture
    import torch
    from nnunet_fixture import write_nnunet_results_folder

    from GASACore.network import UNetPlan, build_network

    if quick:
        plan = fixture.TEST_PLAN
    else:
        plan = UNetPlan(
            patch_size=(64, 128, 128),
            strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2)),
            kernel_sizes=((3, 3, 3),) * 6,
            features_per_stage=(32, 64, 128, 256, 320, 320),
        )
    fixture.TEST_PLAN, fixture.PATCH = plan, plan.patch_size
    fixture.CLASSES = {f"class_{i}": (i,) for i in range(1, 14)}
    torch.manual_seed(0)
    weights = build_network("nnunet", plan=plan, num_input_channels=1, num_classes=14).state_dict()
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(SAMPLE_CT))).astype(np.float32)
    body = image[image > -500]
    props = {
        "max": float(body.max()),
        "mean": float(body.mean()),
        "median": float(np.median(body)),
        "min": float(body.min()),
        "percentile_00_5": float(np.percentile(body, 0.5)),
        "percentile_99_5": float(np.percentile(body, 99.5)),
        "std": float(body.std()),
    }
    return write_nnunet_results_folder(root, weights, props, spacing_zyx=(2.5, 1.5, 1.5))


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_nnunet(case: Path, model: Path, output: Path) -> dict[str, float]:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    timings["import"] = time.perf_counter() - start
    mark = time.perf_counter()
    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=False,
        perform_everything_on_device=False,
        device=torch.device("cpu"),
        verbose=False,
        allow_tqdm=False,
    )
    predictor.initialize_from_trained_model_folder(str(model), use_folds=(0,))
    timings["model load"] = time.perf_counter() - mark
    mark = time.perf_counter()
    io = SimpleITKIO()
    image, properties = io.read_images([str(case)])
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case_npy(
        image, None, properties, predictor.plans_manager, predictor.configuration_manager, predictor.dataset_json
    )
    data = torch.from_numpy(data).contiguous().float()
    timings["read + preprocess"] = time.perf_counter() - mark
    mark = time.perf_counter()
    logits = predictor.predict_logits_from_preprocessed_data(data).cpu()
    timings["predict"] = time.perf_counter() - mark
    mark = time.perf_counter()
    labels = convert_predicted_logits_to_segmentation_with_correct_shape(
        logits,
        predictor.plans_manager,
        predictor.configuration_manager,
        predictor.label_manager,
        properties,
        return_probabilities=False,
    )
    io.write_seg(labels, str(output), properties)
    timings["export"] = time.perf_counter() - mark
    return timings


def run_gasa(case: Path, model: Path, output: Path, skip_air: bool) -> dict[str, float]:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    from GASACore import SegmentOptions, segment
    from GASACore.bundle import load_model
    from GASACore.io import read_image, write_label_map

    timings["import"] = time.perf_counter() - start
    mark = time.perf_counter()
    bundle = load_model(model)
    timings["model load"] = time.perf_counter() - mark
    mark = time.perf_counter()
    image = read_image(case)
    read_seconds = time.perf_counter() - mark
    result = segment(image, bundle, options=SegmentOptions(device="cpu", tta=False, skip_air=skip_air))
    timings["model load"] += result.timings["load"]
    timings["read + preprocess"] = read_seconds + result.timings["preprocess"]
    timings["predict"] = result.timings["predict"]
    mark = time.perf_counter()
    write_label_map(result.labels, result.geometry, output, label_info=bundle.labels, overwrite=True)
    timings["export"] = result.timings["restore"] + time.perf_counter() - mark
    return timings


def run_monai(case: Path, model: Path, output: Path) -> dict[str, float]:
    """MONAI's sliding_window_inference on GASACore's pre-processed array (window stage only)."""
    import torch
    from monai.inferers import sliding_window_inference

    from GASACore.bundle import load_model
    from GASACore.io import read_image
    from GASACore.preprocessing import preprocess

    bundle = load_model(model)
    network = bundle.build_network().eval()
    network.load_state_dict(bundle.load_fold(bundle.folds[0], network))
    image = read_image(case)
    data, _ = preprocess(image.array[None], image.geometry.spacing_zyx, bundle.preprocessing)
    mark = time.perf_counter()
    with torch.inference_mode():
        logits = sliding_window_inference(
            torch.from_numpy(data)[None], bundle.patch_size, 1, network, overlap=0.5, mode="gaussian", sigma_scale=0.125
        )
    seconds = time.perf_counter() - mark
    np.save(output, logits[0].argmax(0).numpy().astype(np.uint8))
    return {"predict": seconds}


def child(tool: str, case: Path, model: Path, output: Path, report: Path) -> None:
    if tool == "nnunet":
        timings = run_nnunet(case, model, output)
    elif tool == "monai":
        timings = run_monai(case, model, output)
    else:
        timings = run_gasa(case, model, output, skip_air=tool == "gasa-skip-air")
    timings["total"] = sum(timings.values())
    report.write_text(json.dumps({"timings": timings, "peak_rss_mb": _peak_rss_mb()}))


def _window_labels_gasa(case: Path, model: Path) -> np.ndarray:
    """GASACore's argmax on the pre-processed grid, to compare MONAI's window stage with."""
    import torch

    from GASACore.bundle import load_model
    from GASACore.inference import SlidingWindowConfig, predict_sliding_window
    from GASACore.io import read_image
    from GASACore.preprocessing import preprocess

    bundle = load_model(model)
    network = bundle.build_network()
    image = read_image(case)
    data, _ = preprocess(image.array[None], image.geometry.spacing_zyx, bundle.preprocessing)
    config = SlidingWindowConfig(patch_size=bundle.patch_size, mirror_axes=(), device=torch.device("cpu"))
    logits = predict_sliding_window(
        network,
        torch.from_numpy(data),
        num_classes=14,
        config=config,
        fold_weights=[bundle.load_fold(bundle.folds[0], network)],
    )
    return logits.argmax(0).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small plan instead of 64x128x128")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--cases", nargs="+", default=["sample", "large"], choices=("sample", "large"))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--child", nargs=5, metavar=("TOOL", "CASE", "MODEL", "OUTPUT", "REPORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        tool, *paths = args.child
        child(tool, *map(Path, paths))
        return
    work = Path(tempfile.mkdtemp(prefix="gasa-engine-bench-"))
    model = make_model(work / "model", args.quick)
    cases = {"sample": SAMPLE_CT}
    if "large" in args.cases:
        cases["large"] = make_large_ct(work / "large_ct.nii.gz")
    results: dict[str, dict[str, dict]] = {}
    for case_name in args.cases:
        case = cases[case_name]
        results[case_name] = {}
        for tool in args.tools:
            suffix = ".npy" if tool == "monai" else ".nii.gz"
            output, report = work / f"{case_name}_{tool}{suffix}", work / f"{case_name}_{tool}.json"
            command = [sys.executable, __file__, "--child", tool, str(case), str(model), str(output), str(report)]
            subprocess.run(command, check=True)
            results[case_name][tool] = json.loads(report.read_text())
            if tool != "monai" and "nnunet" in results[case_name]:
                reference = sitk.GetArrayFromImage(sitk.ReadImage(str(work / f"{case_name}_nnunet.nii.gz")))
                ours = sitk.GetArrayFromImage(sitk.ReadImage(str(output)))
                results[case_name][tool]["agreement_vs_nnunet"] = float((ours == reference).mean())
            if tool == "monai":
                ours = _window_labels_gasa(case, model)
                results[case_name][tool]["agreement_vs_gasa_windows"] = float((np.load(output) == ours).mean())
            print(case_name, tool, json.dumps(results[case_name][tool]), flush=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def print_table(results: dict[str, dict[str, dict]]) -> None:
    stages = ("import", "model load", "read + preprocess", "predict", "export", "total")
    for case_name, tools in results.items():
        print(f"\n### {case_name}\n")
        print(
            "| tool | "
            + " | ".join(f"{s} (s)" for s in stages)
            + " | outside predict (s) | peak RSS (MB) | agreement |"
        )
        print("|---" * (len(stages) + 4) + "|")
        for tool, data in tools.items():
            t = data["timings"]
            outside = t["total"] - t.get("predict", 0.0) if tool != "monai" else float("nan")
            agreement = data.get("agreement_vs_nnunet", data.get("agreement_vs_gasa_windows", float("nan")))
            cells = " | ".join(f"{t[s]:.1f}" if s in t else "-" for s in stages)
            print(f"| {tool} | {cells} | {outside:.1f} | {data['peak_rss_mb']:.0f} | {agreement:.4%} |")
        if "nnunet" in tools and "gasa" in tools:
            n, g = tools["nnunet"], tools["gasa"]
            outside_n = n["timings"]["total"] - n["timings"]["predict"]
            outside_g = g["timings"]["total"] - g["timings"]["predict"]
            memory = g["peak_rss_mb"] / n["peak_rss_mb"]
            total = g["timings"]["total"] / n["timings"]["total"]
            outside = outside_g / outside_n
            print(f"\nratios gasa/nnunet: outside predict {outside:.2f}, peak memory {memory:.2f}, total {total:.2f}")
        if "gasa-skip-air" in tools and "gasa" in tools:
            s, g = tools["gasa-skip-air"], tools["gasa"]
            print(f"skip-air speed-up of the predict stage: {g['timings']['predict'] / s['timings']['predict']:.2f}x")


if __name__ == "__main__":
    main()
