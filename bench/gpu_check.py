"""The GPU check: the ``gpu`` tests and the GPU benchmark (ours vs nnUNetPredictor) in one run, and a short report.

Run it through ``scripts/gpu_check.sh`` on any machine with a CUDA GPU (it needs <= 8 minutes):

    bash scripts/gpu_check.sh                       # report under $OUT, else bench/results/gpu_check
    bash scripts/gpu_check.sh --out /tmp/check      # elsewhere
    bash scripts/gpu_check.sh --dry-run             # what it would run; a report with every step "not run"
    bash scripts/gpu_check.sh --device cpu          # the same steps on the CPU (small plan), to check the script
    bash scripts/gpu_check.sh --device cpu --limit-scale 10   # ... on a slow or busy machine

Steps, each with its own time limit: ``gasa-segment --check-device``; ``pytest -m gpu`` (JUnit XML);
``bench/engine_bench.py --device cuda --tools nnunet gasa`` (same nnU-Net v2 model, same CTs, same settings:
step 0.5, Gaussian, no TTA, fp16 autocast). The report (``gpu_check.json`` and ``gpu_check.md``) holds the
device, the test counts and failures, the benchmark table and the wall-time and agreement ratios against the
issue's goals (wall time <= 0.2x nnUNetPredictor's, agreement >= 99.9%).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "gpu_check"
#: Seconds per step; together under the 8 minutes the check may take.
LIMITS = {"check-device": 60, "gpu-tests": 200, "benchmark": 200}
GOALS = {"wall_time_ratio_max": 0.2, "agreement_min": 0.999}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: $OUT, else bench/results)")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu to check the script")
    parser.add_argument("--dry-run", action="store_true", help="run nothing; write the report of what would run")
    parser.add_argument(
        "--limit-scale", type=float, default=1.0, help="multiply every step's time limit (a slow or busy machine)"
    )
    args = parser.parse_args(argv)
    if not args.limit_scale > 0:
        parser.error(f"--limit-scale must be > 0, got {args.limit_scale!r}")
    if args.device != "cpu" and not args.device.startswith("cuda"):
        parser.error(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    if args.out is None:
        args.out = Path(os.environ["OUT"]) if os.environ.get("OUT") else DEFAULT_OUT
    return args


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The steps: name, command, time limit."""
    python = sys.executable
    bench = [python, str(ROOT / "bench" / "engine_bench.py"), "--device", args.device, "--tools", "nnunet", "gasa"]
    bench += ["--json", str(args.out / "engine_bench.json")]
    if args.device == "cpu":
        bench += ["--quick", "--cases", "sample"]
    # On the CPU (checking the script): the fallback rules, which run anywhere, instead of the gpu tests.
    fallbacks = "Testing/GASACore/inference/test_cuda_fallbacks.py"
    selection = ["Testing", "-m", "gpu"] if args.device != "cpu" else [fallbacks]
    tests = [python, "-m", "pytest", *selection, "-q", "-p", "no:cacheprovider"]
    tests += [f"--junitxml={args.out / 'gpu_tests.xml'}"]
    steps = [
        {"name": "check-device", "command": [python, "-m", "GASACore.cli", "--check-device", "--device", "auto"]},
        {"name": "gpu-tests", "command": tests},
        {"name": "benchmark", "command": bench},
    ]
    return [{**step, "limit_s": round(LIMITS[step["name"]] * args.limit_scale)} for step in steps]


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def run_step(step: dict[str, Any]) -> dict[str, Any]:
    """Run one step within its limit; its status, seconds, return code and the tail of its output."""
    start = time.perf_counter()
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(
            step["command"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=step["limit_s"], check=False,
        )  # fmt: skip
        status, code, output = ("ok" if done.returncode == 0 else "failed"), done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as err:  # its captured output comes as bytes, text=True or not
        status, code, output = "timeout", None, _text(err.stdout) + _text(err.stderr)
    seconds = round(time.perf_counter() - start, 1)
    return {**step, "status": status, "returncode": code, "seconds": seconds, "output_tail": output[-4000:]}


def _run_and_say(step: dict[str, Any]) -> dict[str, Any]:
    print(f"{step['name']}: running (limit {step['limit_s']} s)", flush=True)
    done = run_step(step)
    print(f"{step['name']}: {done['status']} in {done['seconds']} s", flush=True)
    if done["status"] != "ok":
        print(done["output_tail"][-2000:], file=sys.stderr, flush=True)
    return done


def junit_counts(path: Path) -> dict[str, Any]:
    """Passed / failed / errors / skipped and the failing test ids from a pytest JUnit XML file."""
    if not path.is_file():
        return {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": [], "found": False}
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        key = {"failure": "failed", "error": "errors"}.get(outcome, outcome)
        counts[key] += 1
        if key in ("failed", "errors"):
            failures.append(f"{case.get('classname')}::{case.get('name')}")
    return {**counts, "failures": failures, "found": True}


def bench_ratios(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per case, gasa / nnunet: wall time (total), predict stage and peak RSS, and the voxel agreement."""
    ratios = {}
    for case, tools in results.items():
        if "gasa" not in tools or "nnunet" not in tools:
            continue
        ours, theirs = tools["gasa"], tools["nnunet"]
        ratios[case] = {
            "wall_time": ours["timings"]["total"] / theirs["timings"]["total"],
            "predict": ours["timings"]["predict"] / theirs["timings"]["predict"],
            "peak_rss": ours["peak_rss_mb"] / theirs["peak_rss_mb"],
            "agreement": ours.get("agreement_vs_nnunet", float("nan")),
        }
    return ratios


def goals_met(ratios: dict[str, dict[str, float]]) -> bool | None:
    """Every case within the goals; ``None`` when nothing was measured."""
    if not ratios:
        return None
    return all(
        r["wall_time"] <= GOALS["wall_time_ratio_max"] and r["agreement"] >= GOALS["agreement_min"]
        for r in ratios.values()
    )


def build_report(args: argparse.Namespace, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's JSON document from the steps run (or planned) and the files they wrote."""
    by_name = {step["name"]: step for step in steps}
    device: Any = None
    check = by_name.get("check-device", {})
    if check.get("status") == "ok":
        try:
            device = json.loads(check["output_tail"].strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            device = None
    bench_file = args.out / "engine_bench.json"
    bench = json.loads(bench_file.read_text()) if by_name["benchmark"].get("status") == "ok" else {}
    ratios = bench_ratios(bench)
    return {
        "schema_version": 1,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "dry-run" if args.dry_run else args.device,
        "device": device,
        "steps": [{k: v for k, v in step.items() if k != "output_tail"} for step in steps],
        "tests": junit_counts(args.out / "gpu_tests.xml") if not args.dry_run else None,
        "benchmark": bench,
        "ratios": ratios,
        "goals": {**GOALS, "met": goals_met(ratios)},
    }


def markdown(report: dict[str, Any]) -> str:
    """A short Markdown version of the report."""
    device = report["device"] or {}
    gpus = ", ".join(g["name"] for g in device.get("gpus", [])) or "none"
    lines = [
        f"# GPU check ({report['mode']}), {report['date']}",
        "",
        f"Device: {device.get('device', 'unknown')} ({gpus}); torch {device.get('torch')}, CUDA {device.get('cuda')}",
        "",
        "| step | status | seconds |",
        "|---|---|---|",
        *(f"| {s['name']} | {s['status']} | {s.get('seconds', '-')} |" for s in report["steps"]),
    ]
    tests = report["tests"]
    if tests:
        lines += ["", f"Tests: {tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, "
                  f"{tests['skipped']} skipped"]  # fmt: skip
        lines += [f"- FAILED {name}" for name in tests["failures"]]
    if report["ratios"]:
        lines += ["", "| case | wall time gasa/nnU-Net | predict | peak RSS | agreement |", "|---|---|---|---|---|"]
        for case, r in report["ratios"].items():
            row = f"| {case} | {r['wall_time']:.2f} | {r['predict']:.2f} | {r['peak_rss']:.2f} | {r['agreement']:.4%} |"
            lines.append(row)
        goals = report["goals"]
        lines += ["", f"Goals (wall time <= {goals['wall_time_ratio_max']}x, agreement >= "
                  f"{goals['agreement_min']:.1%}): {'met' if goals['met'] else 'not met'}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """``gpu_check.json`` and ``gpu_check.md`` in ``out``, each written atomically."""
    from GASACore.io import atomic_output

    paths = out / "gpu_check.json", out / "gpu_check.md"
    for path, text in zip(paths, (json.dumps(report, indent=2) + "\n", markdown(report)), strict=True):
        with atomic_output(path, overwrite=True) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = plan(args)
    if args.dry_run:
        steps = [{**step, "status": "not run"} for step in steps]
    else:
        steps = [_run_and_say(step) for step in steps]
    json_path, md_path = write_report(args.out, build_report(args, steps))
    print(f"report: {md_path} and {json_path}")
    return 0 if all(step["status"] in ("ok", "not run") for step in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
