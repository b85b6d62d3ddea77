"""scripts/gpu_check.sh's CPU-side parts: argument parsing, the plan, the report writer, --dry-run, --device cpu."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402

SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def _script(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ)
    )


def test_dry_run_writes_the_plan_as_a_report_under_out(tmp_path: Path) -> None:
    result = _script("--dry-run", env={**os.environ, "OUT": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["mode"] == "dry-run" and [s["status"] for s in report["steps"]] == ["not run"] * 3
    commands = {s["name"]: s["command"] for s in report["steps"]}
    assert commands["gpu-tests"][2:6] == ["pytest", "Testing", "-m", "gpu"]
    assert commands["gpu-tests"][-1] == f"--junitxml={tmp_path / 'gpu_tests.xml'}"
    assert commands["benchmark"][2:6] == ["--device", "cuda", "--tools", "nnunet"]
    assert "| benchmark | not run | - |" in (tmp_path / "gpu_check.md").read_text()
    assert [s["limit_s"] for s in report["steps"]] == [60, 200, 200], "<= 8 minutes in all"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "tpu"], "--device must be cpu, cuda or cuda:N, got 'tpu'"),
        (["--limit-scale", "0"], "--limit-scale must be > 0, got 0.0"),
    ],
)
def test_bad_arguments_are_refused(argv: list[str], message: str) -> None:
    result = _script(*argv, "--dry-run")
    assert result.returncode == 2 and message in result.stderr


def test_out_defaults_to_the_environment_then_bench_results(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.parse_args([]).out == tmp_path
    monkeypatch.delenv("OUT")
    assert gpu_check.parse_args(["--device", "cuda:1"]).out == ROOT / "bench" / "results" / "gpu_check"


def test_the_report_counts_tests_and_compares_with_nnunet(tmp_path: Path) -> None:
    (tmp_path / "gpu_tests.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="a" name="ok"/><testcase classname="a" name="bad"><failure message="x"/></testcase>'
        '<testcase classname="b" name="later"><skipped/></testcase></testsuite></testsuites>'
    )
    bench = {
        "sample": {
            "nnunet": {"timings": {"total": 10.0, "predict": 6.0}, "peak_rss_mb": 2000.0},
            "gasa": {"timings": {"total": 1.5, "predict": 0.6}, "peak_rss_mb": 1000.0, "agreement_vs_nnunet": 0.9995},
        }
    }
    (tmp_path / "engine_bench.json").write_text(json.dumps(bench))
    args = gpu_check.parse_args(["--out", str(tmp_path)])
    steps = [{**step, "status": "ok", "seconds": 1.0, "output_tail": "{}"} for step in gpu_check.plan(args)]
    report = gpu_check.build_report(args, steps)
    assert report["tests"] == {"passed": 1, "failed": 1, "errors": 0, "skipped": 1, "failures": ["a::bad"],
                               "found": True}  # fmt: skip
    ratios = report["ratios"]["sample"]
    assert ratios == pytest.approx({"wall_time": 0.15, "predict": 0.1, "peak_rss": 0.5, "agreement": 0.9995})
    assert report["goals"]["met"] is True
    json_path, md_path = gpu_check.write_report(tmp_path, report)
    text = md_path.read_text()
    assert "| sample | 0.15 | 0.10 | 0.50 | 99.9500% |" in text and "- FAILED a::bad" in text and "met" in text
    assert json.loads(json_path.read_text())["ratios"]["sample"]["wall_time"] == pytest.approx(0.15)
    bench["sample"]["gasa"]["agreement_vs_nnunet"] = 0.99
    assert gpu_check.goals_met(gpu_check.bench_ratios(bench)) is False


@pytest.mark.slow
def test_device_cpu_runs_every_step_on_the_cpu(tmp_path: Path) -> None:
    result = _script("--device", "cpu", "--out", str(tmp_path), "--limit-scale", "4", timeout=2400)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [s["status"] for s in report["steps"]] == ["ok"] * 3
    assert report["device"]["device"] == "cpu" and report["tests"]["passed"] > 0 and report["tests"]["failed"] == 0
    assert report["ratios"]["sample"]["agreement"] >= 0.999
