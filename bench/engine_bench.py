"""End-to-end inference benchmark: gasa-segment vs nnU-Net v2's nnUNetPredictor (vs MONAI for the window stage).

Same nnU-Net v2 results folder, same CT file, same settings (step 0.5, Gaussian, no TTA, CPU), in one run. Every
tool runs in its own fresh Python process so that import time, peak resident memory (ru_maxrss) and CPU time
are its own; wall time is measured around the process. ``gasa`` is what ``gasa-segment`` does (its OpenMP
defaults are applied before torch loads, its CPU backend is the automatic one); ``nnunet`` is nnUNetPredictor as
its users call it; ``gasa-onednn`` is ``gasa`` with ``--cpu-backend onednn`` (float32), to compare with ``auto``.

Model (default): a PlainConvUNet with features 8-16-32-64-128, patch 48x128x128, 14 classes (the 13 BTCV organs
of TotalSegmentator's labels), plan spacing 3 x 2 x 2 mm (z, y, x), briefly trained on the sample CT
(``train.quick_model``); ``--model large`` is the PlainConvUNet 32-320 at 64x128x128 and 2.5 x 1.5 x 1.5 mm with
He-initialised weights. Cases, both resampled by the plan: ``sample`` (the real sample CT, 122x101x112 at 3 mm),
``dicom`` (the DICOM series of another patient, 512x512x20 at 0.98 x 0.98 x 2 mm, written once as NIfTI so that
both tools read the same file), ``large`` (the sample CT resampled to 300x300x168).

    nice -n 15 python bench/engine_bench.py                         # small model, sample + dicom
    nice -n 15 python bench/engine_bench.py --model large --cases sample large --tools nnunet gasa monai
    python bench/engine_bench.py --device cuda --tools nnunet gasa   # on a GPU (scripts/gpu_check.sh)

On CUDA both tools keep everything on the GPU (nnU-Net: ``perform_everything_on_device=True``) with fp16 autocast.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SAMPLE_CT = ROOT / "Resources" / "SampleData" / "example_ct.nii.gz"
TOOLS = ("nnunet", "gasa", "gasa-skip-air", "gasa-onednn", "monai")


def _shared_ct_folder() -> Path:
    root = Path(os.environ.get("GASA_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return root / "totalsegmentator"


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


def make_dicom_case(target: Path) -> Path:
    """The DICOM sample series (another patient) as one NIfTI file, read with GASACore's DICOM reader."""
    from GASACore.io import read_image

    image = read_image(_shared_ct_folder() / "example_ct_dicom")
    volume = sitk.GetImageFromArray(image.array.astype(np.int16))
    volume.SetSpacing(tuple(float(s) for s in reversed(image.geometry.spacing_zyx)))
    volume.SetOrigin(tuple(float(v) for v in image.geometry.origin))
    volume.SetDirection(tuple(float(v) for v in image.geometry.direction))
    sitk.WriteImage(volume, str(target))
    return target


def _btcv_classes() -> dict[str, tuple[int, ...]]:
    """TotalSegmentator ids per BTCV organ (13 classes), the demo model's mapping."""
    from train.datasets import TOTALSEG_TO_BTCV

    classes: dict[int, list[int]] = {}
    for source, organ in TOTALSEG_TO_BTCV.items():
        classes.setdefault(int(organ), []).append(int(source))
    return {f"organ_{organ}": tuple(ids) for organ, ids in sorted(classes.items())}


def make_model(root: Path, model: str) -> Path:
    """The nnU-Net v2 results folder of ``model`` (``small``: trained briefly; ``large``: He-initialised)."""
    import torch

    from GASACore.network import UNetPlan, build_network
    from train.quick_model import intensity_properties, load_training_case, train_briefly, write_nnunet_results_folder

    classes = _btcv_classes()
    folder = _shared_ct_folder()
    labels = folder / "example_seg_fast_force_split.nii.gz"
    ct, target = load_training_case(folder / "example_ct.nii.gz", labels, classes)
    props = intensity_properties(ct, target)
    if model == "large":
        plan = UNetPlan(
            patch_size=(64, 128, 128),
            strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2)),
            kernel_sizes=((3, 3, 3),) * 6,
            features_per_stage=(32, 64, 128, 256, 320, 320),
        )
        torch.manual_seed(0)
        weights = build_network("nnunet", plan=plan, num_input_channels=1, num_classes=len(classes) + 1).state_dict()
        spacing = (2.5, 1.5, 1.5)
    else:
        plan = UNetPlan(
            patch_size=(48, 128, 128),
            strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
            kernel_sizes=((3, 3, 3),) * 5,
            features_per_stage=(8, 16, 32, 64, 128),
        )
        weights = train_briefly(
            ct, target, props, plan=plan, num_classes=len(classes) + 1, iterations=60, patch=(32, 64, 64)
        )
        spacing = (3.0, 2.0, 2.0)
    return write_nnunet_results_folder(root, weights, props, plan=plan, classes=classes, spacing_zyx=spacing)


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (``VmHWM``; ``ru_maxrss`` where there is no /proc).

    Not ``ru_maxrss`` on Linux: it keeps the peak of the forked copy of the parent from before ``exec``, so
    every tool run from this (large, model-training) parent read at least the parent's size; the gasa figures
    of 2026-12-02 08:18 (923 MB on both CTs) were that artefact.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_nnunet(case: Path, model: Path, output: Path, device: str = "cpu") -> dict[str, float]:
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
        perform_everything_on_device=device.startswith("cuda"),
        device=torch.device(device),
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


def run_gasa(
    case: Path, model: Path, output: Path, skip_air: bool, device: str = "cpu", cpu_backend: str = "auto"
) -> dict[str, float | str]:
    """What ``gasa-segment CASE -o OUTPUT -m MODEL --device cpu --no-tta [--cpu-backend B]`` does, stage by stage."""
    timings: dict[str, float | str] = {}
    start = time.perf_counter()
    from GASACore.malloc_env import apply_malloc_defaults
    from GASACore.openmp_env import apply_openmp_defaults

    apply_openmp_defaults()  # as gasa-segment's main() does, before torch is imported
    apply_malloc_defaults()
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
    options = SegmentOptions(device=device, tta=False, skip_air=skip_air, cpu_backend=cpu_backend)
    result = segment(image, bundle, options=options)
    timings["model load"] += result.timings["load"]
    timings["read + preprocess"] = read_seconds + result.timings["preprocess"]
    timings["predict"] = result.timings["predict"]
    mark = time.perf_counter()
    write_label_map(result.labels, result.geometry, output, label_info=bundle.labels, overwrite=True)
    timings["export"] = result.timings["restore"] + time.perf_counter() - mark
    timings["backend"] = f"{result.forward.backend}, {result.forward.threads} thread(s)"
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


def child(tool: str, case: Path, model: Path, output: Path, report: Path, device: str = "cpu") -> None:
    if tool == "nnunet":
        timings = run_nnunet(case, model, output, device)
    elif tool == "monai":
        timings = run_monai(case, model, output)
    else:
        backend = "onednn" if tool == "gasa-onednn" else "auto"  # gasa-onednn: float32 oneDNN, for comparison
        timings = run_gasa(case, model, output, skip_air=tool == "gasa-skip-air", device=device, cpu_backend=backend)
    backend = timings.pop("backend", None)
    timings["total"] = sum(float(v) for v in timings.values())
    result = {"timings": timings, "peak_rss_mb": _peak_rss_mb(), "cpu_s": _cpu_seconds(), "backend": backend}
    report.write_text(json.dumps(result))


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
    config = SlidingWindowConfig(
        patch_size=bundle.patch_size, mirror_axes=(), device=torch.device("cpu"), logit_sums="fp32"
    )
    logits = predict_sliding_window(
        network,
        torch.from_numpy(data),
        num_classes=bundle.architecture.num_classes,
        config=config,
        fold_weights=[bundle.load_fold(bundle.folds[0], network)],
    )
    return logits.argmax(0).numpy()


def _load_average() -> float:
    return round(os.getloadavg()[0], 2)


def run_tool(tool: str, case_name: str, case: Path, model: Path, work: Path, device: str = "cpu") -> dict:
    """One tool on one case in a fresh process; its report plus wall time and the load around it."""
    suffix = ".npy" if tool == "monai" else ".nii.gz"
    output, report = work / f"{case_name}_{tool}{suffix}", work / f"{case_name}_{tool}.json"
    command = [sys.executable, __file__, "--child", tool, str(case), str(model), str(output), str(report)]
    command += ["--device", device]
    load_before, start = _load_average(), time.perf_counter()
    subprocess.run(command, check=True)
    result = json.loads(report.read_text())
    result |= {"wall_s": time.perf_counter() - start, "load_before": load_before, "load_after": _load_average()}
    result["output"] = str(output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("small", "large"), default="small", help="the results folder to use")
    parser.add_argument("--tools", nargs="+", default=["nnunet", "gasa"], choices=TOOLS)
    parser.add_argument("--cases", nargs="+", default=["sample", "dicom"], choices=("sample", "dicom", "large"))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N for nnU-Net and gasa (MONAI: CPU)")
    parser.add_argument(
        "--child", nargs=5, metavar=("TOOL", "CASE", "MODEL", "OUTPUT", "REPORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        tool, *paths = args.child
        child(tool, *map(Path, paths), device=args.device)
        return
    work = Path(tempfile.mkdtemp(prefix="gasa-engine-bench-"))
    model = make_model(work / "model", args.model)
    makers = {"sample": lambda: SAMPLE_CT, "dicom": lambda: make_dicom_case(work / "dicom_ct.nii.gz"),
              "large": lambda: make_large_ct(work / "large_ct.nii.gz")}  # fmt: skip
    results: dict[str, dict[str, dict]] = {}
    for case_name in args.cases:
        case = makers[case_name]()
        results[case_name] = {}
        for tool in args.tools:
            result = results[case_name][tool] = run_tool(tool, case_name, case, model, work, args.device)
            if tool != "monai" and "nnunet" in results[case_name]:
                reference = sitk.GetArrayFromImage(sitk.ReadImage(results[case_name]["nnunet"]["output"]))
                ours = sitk.GetArrayFromImage(sitk.ReadImage(result["output"]))
                result["agreement_vs_nnunet"] = float((ours == reference).mean())
                result["labels_found"] = len(np.unique(reference))
            if tool == "monai":
                labels = _window_labels_gasa(case, model)
                result["agreement_vs_gasa_windows"] = float((np.load(result["output"]) == labels).mean())
            print(case_name, tool, json.dumps(result), flush=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def print_table(results: dict[str, dict[str, dict]]) -> None:
    stages = ("import", "model load", "read + preprocess", "predict", "export")
    for case_name, tools in results.items():
        print(f"\n### {case_name}\n")
        columns = " | ".join(f"{s} (s)" for s in stages)
        print(f"| tool | {columns} | wall (s) | CPU (s) | peak RSS (MB) | agreement |")
        print("|---" * (len(stages) + 5) + "|")
        for tool, data in tools.items():
            t = data["timings"]
            agreement = data.get("agreement_vs_nnunet", data.get("agreement_vs_gasa_windows", float("nan")))
            cells = " | ".join(f"{t[s]:.1f}" if s in t else "-" for s in stages)
            print(f"| {tool} | {cells} | {data['wall_s']:.1f} | {data['cpu_s']:.1f} | {data['peak_rss_mb']:.0f} "
                  f"| {agreement:.4%} |")  # fmt: skip
        if "nnunet" in tools and "gasa" in tools:
            n, g = tools["nnunet"], tools["gasa"]
            print(
                f"\nratios gasa/nnunet: wall {g['wall_s'] / n['wall_s']:.2f}, CPU time {g['cpu_s'] / n['cpu_s']:.2f}, "
                f"peak RSS {g['peak_rss_mb'] / n['peak_rss_mb']:.2f}, predict "
                f"{g['timings']['predict'] / n['timings']['predict']:.2f}; agreement {g['agreement_vs_nnunet']:.4%}; "
                f"gasa ran {g['backend']}; load average {n['load_before']}-{g['load_after']}"
            )
        if "nnunet" in tools and "gasa-onednn" in tools:
            n, o = tools["nnunet"], tools["gasa-onednn"]
            print(
                f"ratios gasa-onednn/nnunet: wall {o['wall_s'] / n['wall_s']:.2f}, "
                f"peak RSS {o['peak_rss_mb'] / n['peak_rss_mb']:.2f}; agreement {o['agreement_vs_nnunet']:.4%}"
            )
        if "gasa-skip-air" in tools and "gasa" in tools:
            s, g = tools["gasa-skip-air"], tools["gasa"]
            print(f"skip-air speed-up of the predict stage: {g['timings']['predict'] / s['timings']['predict']:.2f}x")


if __name__ == "__main__":
    main()
