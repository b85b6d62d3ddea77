"""Shared by the gasa-train pipeline and DDP tests: a tiny real-CT data set, planned once, and CLI subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

REPO_ROOT = Path(__file__).resolve().parents[2]

#: TotalSegmentator ids kept in the tiny data set -> BTCV values (spleen, right / left kidney).
TINY_REMAP = {1: 1, 2: 2, 3: 3}
TINY_LABELS = {"background": 0, "spleen": 1, "right kidney": 2, "left kidney": 3}


def write_tiny_pairs(shared_data: Path, target: Path, *, step: int = 4, offsets: tuple[int, ...] = (0, 2)) -> Path:
    """Two decimated copies (every ``step``-th voxel, 12 mm) of the real sample CT and its TotalSegmentator labels.

    Returns the folder holding ``images/`` and ``labels/`` (TotalSegmentator ids, converted by ``convert pairs``).
    """
    source = shared_data / "totalsegmentator"
    ct = sitk.ReadImage(str(source / "example_ct.nii.gz"))
    seg = sitk.ReadImage(str(source / "example_seg_fast_force_split.nii.gz"))
    ct_array, seg_array = sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(seg)
    for sub in ("images", "labels"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    for index, offset in enumerate(offsets):
        window = (slice(offset, None, step),) * 3
        for array, sub, dtype in ((ct_array, "images", np.int16), (seg_array, "labels", np.uint8)):
            image = sitk.GetImageFromArray(array[window].astype(dtype))
            image.SetSpacing([s * step for s in ct.GetSpacing()])
            image.SetDirection(ct.GetDirection())
            image.SetOrigin(ct.TransformIndexToPhysicalPoint([offset] * 3))
            sitk.WriteImage(image, str(target / sub / f"tiny_{index:03d}.nii.gz"))
    (target / "labels.json").write_text(json.dumps(TINY_LABELS), encoding="utf-8")
    (target / "remap.json").write_text(json.dumps({str(k): v for k, v in TINY_REMAP.items()}), encoding="utf-8")
    return target


def cli_env(root: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: nnU-Net folders under ``root``, one worker process each."""
    env = dict(os.environ)
    env.update(
        {
            "nnUNet_raw": str(root / "raw"),
            "nnUNet_preprocessed": str(root / "preprocessed"),
            "nnUNet_results": str(root / "results"),
            "nnUNet_def_n_proc": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]),
        }
    )
    return env


def run_cli(args: list[str], env: dict[str, str], *, timeout: float = 300, module: str = "train.cli") -> str:
    """Run ``python -m train.cli ARGS``; returns stdout + stderr, raises with the output on failure."""
    command = [sys.executable, "-m", module, *args]
    done = subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {done.returncode}:\n{output[-6000:]}")
    return output


DATASET = "Dataset991_TinyCT"
SMALL_PLAN = ["--gpu-memory-gb", "0.1", "--base-features", "4", "--max-features", "32", "--gasa-dim", "8",
              "--gasa-heads", "2", "-j", "1"]  # fmt: skip
TRAIN_FAST = ["--device", "cpu", "--iterations", "2", "--val-iterations", "1", "--augmentation-workers", "0"]


@pytest.fixture(scope="session")
def planned_tiny(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """``gasa-train convert pairs`` + ``gasa-train plan`` of the tiny data set; returns the nnU-Net root folder.

    Test modules import this fixture, which gives each module its own definition; the folder is built once per
    session all the same (marker file).
    """
    root = tmp_path_factory.getbasetemp() / "gasa_train"
    done = root / "planned.ok"
    if done.is_file():
        return root
    root.mkdir(exist_ok=True)
    env = cli_env(root)
    pairs = write_tiny_pairs(shared_data, root / "pairs")
    run_cli(["convert", "pairs", str(pairs / "images"), str(pairs / "labels"), "--labels", str(pairs / "labels.json"),
             "--remap", str(pairs / "remap.json"), "--dataset-id", "991", "--name", "TinyCT",
             "--target", str(root / "raw"), "--copy"], env)  # fmt: skip
    run_cli(["plan", "991", "--variants", "gasa-unet", "gasa-l", *SMALL_PLAN], env)
    done.write_text("ok", encoding="utf-8")
    return root
