"""Two-process DDP training (gloo on CPU) started the documented way: torchrun -m train.cli train ..."""

from __future__ import annotations

import json
from pathlib import Path

from Testing.train.test_pipeline_support import DATASET, TRAIN_FAST, cli_env, planned_tiny, run_cli

__all__ = ["planned_tiny"]


def test_two_process_cpu_ddp_trains_and_checkpoints(planned_tiny: Path) -> None:
    env = cli_env(planned_tiny)
    env["nnUNet_results"] = str(planned_tiny / "results_ddp")
    args = ["--standalone", "--nproc_per_node=2", "-m", "train.cli", "train", "991", "--variant", "gasa-unet",
            "--fold", "all", "--epochs", "1", "--no-validation", *TRAIN_FAST]  # fmt: skip
    output = run_cli(args, env, module="torch.distributed.run")
    assert "world size 2" in output
    fold = planned_tiny / "results_ddp" / DATASET / "GASATrainer__nnUNetPlans_gasa-unet__3d_fullres" / "fold_all"
    assert (fold / "checkpoint_final.pth").is_file()
    record = json.loads((fold / "gasa_training.json").read_text())
    assert record["sessions"][0]["world_size"] == 2 and record["sessions"][0]["device"] == "cpu"
    assert len((fold / "epochs.jsonl").read_text().splitlines()) == 1  # rank 0 only
