"""``gasa-train reproduce 2 --dataset btcv --tiny`` end to end on the tiny real-CT data set, then ``--continue``.

One call covers both evaluations: every run's cross-validation score (its fold's validation cases) and, as a test
set is given, the paper's protocol that the table then holds (each row's fold ensemble predicting the test case).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from Testing.train.test_pipeline_support import cli_env, planned_tiny, run_cli

__all__ = ["planned_tiny"]  # the session fixture

METHODS = ["nnunet", "gasa-unet"]


def test_tiny_table_2_runs_end_to_end_and_continue_redoes_nothing(planned_tiny: Path, tmp_path: Path) -> None:
    env = cli_env(planned_tiny)
    out = tmp_path / "repro"
    raw = planned_tiny / "raw" / "Dataset991_TinyCT"
    for sub, source in (
        ("images", raw / "imagesTr" / "tiny_001_0000.nii.gz"),
        ("labels", raw / "labelsTr" / "tiny_001.nii.gz"),
    ):
        (tmp_path / "test" / sub).mkdir(parents=True)
        shutil.copy(source, tmp_path / "test" / sub)
    args = ["reproduce", "2", "--dataset", "btcv", "--dataset-id", "991", "--tiny", "--methods", *METHODS,
            "--out", str(out), "--test-images", str(tmp_path / "test" / "images"),
            "--test-labels", str(tmp_path / "test" / "labels")]  # fmt: skip
    first = run_cli(args, env, timeout=900)
    assert "trained 2 run(s); 0 finished before" in first

    state = json.loads((out / "btcv" / "state.json").read_text())
    assert state["config"]["schedule"]["epochs"] == 1 and state["config"]["dataset"] == "Dataset991_TinyCT"
    runs = state["runs"]
    assert sorted(runs) == ["gasa-unet/fold_all/seed_0", "nnunet/fold_all/seed_0"]
    for name, run in runs.items():
        assert run["status"] == "done", name
        fold = Path(run["fold_folder"])
        assert fold.parent.parent.parent == out / "btcv" / "seed_0"  # the seed's own nnUNet_results
        assert (fold / "checkpoint_final.pth").is_file()
        metrics = json.loads(Path(run["metrics"]).read_text())
        assert [c["case"] for c in metrics["cases"]] == ["tiny_000", "tiny_001"]  # fold all validates every case
        assert run["dice"] == metrics["mean"]["dice"] and 0.0 <= run["dice"] <= 1.0
        assert run["nsd"] == metrics["mean"]["nsd"]
        assert set(run["class_means"]["dice"]) >= {"spleen", "right kidney", "left kidney"}
    assert state["skipped"] == {}  # rows not asked for are neither run nor skipped

    table = json.loads((out / "table2.json").read_text())
    rows = table["datasets"]["btcv"]["rows"]
    assert list(rows) == METHODS  # the paper's row order
    gasa, base = rows["gasa-unet"], rows["nnunet"]
    assert gasa["baseline"] == "nnunet" and gasa["paper"] == {"dice": 81.69, "nsd": 76.03}
    shown = round(float(gasa["dice_percent"]) - float(base["dice_percent"]), 2)
    assert gasa["dice_difference"] == f"({'-' if shown < 0 else '+'}{abs(shown):.2f})"
    markdown = (out / "table2.md").read_text()
    assert "| Models | BTCV Dice | BTCV NSD |" in markdown
    assert f"| +GASA(Ours) (gasa-unet) | {gasa['dice_percent']} {gasa['dice_difference']} |" in markdown
    assert "Not run: nnunet-cbam, nnunet-at, nnunet-mat, gasa-l." in markdown
    with (out / "table2.csv").open(newline="") as handle:
        rows_csv = list(csv.DictReader(handle))
    assert [(r["network"], r["metric"]) for r in rows_csv] == [(m, k) for m in METHODS for k in ("dice", "nsd")]
    assert (out / "btcv" / "table2_per_organ.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The paper's protocol with a test set: each row's fold ensemble (its bundle) predicts it; the table holds that.
    assert state["config"]["protocol"] == "test-set"
    for network in METHODS:
        test = state["tests"][f"{network}/seed_0"]
        assert test["cases"] == 1 and rows[network]["dice"] == test["dice"] and rows[network]["nsd"] == test["nsd"]
        assert (out / "btcv" / "test" / network / "seed_0" / "predictions" / "tiny_001.nii.gz").is_file()
    assert "BTCV (held-out test set" in markdown
    assert state["bundles"] == {f"{m}/seed_0": str(out / "btcv" / "bundles" / f"{m}-seed0") for m in METHODS}
    from GASACore.bundle import load_model

    for network in METHODS:
        bundle = load_model(out / "btcv" / "bundles" / f"{network}-seed0")
        assert bundle.architecture.name == network and [f.name for f in bundle.folds] == ["fold_all"]
        assert [label.name for label in bundle.labels] == ["spleen", "right kidney", "left kidney"]

    second = run_cli([*args, "--continue"], env, timeout=300)
    assert "trained 0 run(s); 2 finished before, skipped" in second
    again = json.loads((out / "btcv" / "state.json").read_text())["runs"]
    assert {n: r["finished"] for n, r in again.items()} == {n: r["finished"] for n, r in runs.items()}
    assert json.loads((out / "table2.json").read_text()) == table

    # A run killed after its last epoch (state still "started"): --continue resumes it from its checkpoint.
    killed = json.loads((out / "btcv" / "state.json").read_text())
    killed["runs"]["gasa-unet/fold_all/seed_0"]["status"] = "started"
    (out / "btcv" / "state.json").write_text(json.dumps(killed))
    third = run_cli([*args, "--continue"], env, timeout=300)
    assert "trained 1 run(s); 1 finished before, skipped" in third
    resumed = json.loads((out / "btcv" / "state.json").read_text())["runs"]
    assert resumed["nnunet/fold_all/seed_0"] == runs["nnunet/fold_all/seed_0"]
    assert resumed["gasa-unet/fold_all/seed_0"]["status"] == "done"
    fold = Path(resumed["gasa-unet/fold_all/seed_0"]["fold_folder"])
    assert len((fold / "epochs.jsonl").read_text().splitlines()) == 1  # resumed, not trained again
    log = (out / "btcv" / "logs" / "gasa-unet" / "fold_all" / "seed_0" / "train.log").read_text()
    commands = [line for line in log.splitlines() if line.startswith("$ ")]
    assert len(commands) == 2 and not commands[0].endswith("--continue") and commands[1].endswith("--continue")


def test_tiny_table_2_with_every_row_skips_only_what_cannot_run_here(planned_tiny: Path, tmp_path: Path) -> None:
    """All of Table 2's rows, as the acceptance runs it: MAT cannot take the tiny plan's (7, 7, 8) bottleneck, so
    its row is skipped with that reason (as the paper leaves MAT out on AMOS); every other row trains."""
    out = tmp_path / "repro"
    args = ["reproduce", "2", "--dataset", "btcv", "--dataset-id", "991", "--tiny", "--out", str(out)]
    log = run_cli(args, cli_env(planned_tiny), timeout=1200)
    trained = ["nnunet", "nnunet-cbam", "nnunet-at", "gasa-unet", "gasa-l"]
    assert f"trained {len(trained)} run(s); 0 finished before" in log
    state = json.loads((out / "btcv" / "state.json").read_text())
    assert sorted(state["runs"]) == sorted(f"{n}/fold_all/seed_0" for n in trained)
    assert all(run["status"] == "done" for run in state["runs"].values())
    assert list(state["skipped"]) == ["nnunet-mat"]
    assert "its plans cannot be made from nnUNetPlans.json" in state["skipped"]["nnunet-mat"]
    assert "cubic" in state["skipped"]["nnunet-mat"]
    table = json.loads((out / "table2.json").read_text())
    rows = table["datasets"]["btcv"]["rows"]
    assert list(rows) == ["nnunet", "nnunet-cbam", "nnunet-at", "nnunet-mat", "gasa-unet", "gasa-l"]
    assert rows["nnunet-mat"]["skipped"] == state["skipped"]["nnunet-mat"] and rows["nnunet-mat"]["dice"] is None
    for network in trained:
        assert 0.0 <= rows[network]["dice"] <= 1.0 and rows[network]["skipped"] is None
    markdown = (out / "table2.md").read_text()
    assert "nnunet-mat: skipped, its plans cannot be made" in markdown and "Not run:" not in markdown
