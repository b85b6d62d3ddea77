"""Models for the TotalSegmentator recipe tests, in TotalSegmentator's release layout.

* :func:`constant_model_zip`: an nnU-Net v2 results folder whose network paints one class everywhere (all weights
  zero, the segmentation layers' bias picks the class): its output is known by construction, so a crop pre-pass
  or a merge shows exactly where it ran.
* :func:`demo_bundle_zip`: the bundled demo GASA-UNet (13 BTCV organs, kidneys Dice 0.97 on the sample CT) as a
  release zip: a crop pre-pass model and a composite part that really finds organs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from catalog_support import REPO_ROOT, zip_folder
from nnunet_fixture import TEST_PLAN

from GASACore.network import build_network
from train import quick_model

DEMO_BUNDLE = REPO_ROOT / "Resources" / "models" / "gasa-demo-btcv"
#: The demo bundle's classes under TotalSegmentator's names (its values are BTCV's).
DEMO_CLASSES = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 6, "aorta": 8}
_PROPS = {"max": 300.0, "mean": 50.0, "median": 50.0, "min": -100.0, "percentile_00_5": -90.0,
          "percentile_99_5": 250.0, "std": 40.0}  # fmt: skip


def constant_weights(num_classes: int, painted: int) -> dict[str, torch.Tensor]:
    """Weights of the test PlainConvUNet that output class ``painted`` at every voxel."""
    network = build_network("nnunet", plan=TEST_PLAN, num_input_channels=1, num_classes=num_classes)
    state = {name: torch.zeros_like(value) for name, value in network.state_dict().items()}
    for name in state:
        if name.startswith("decoder.seg_layers.") and name.endswith(".bias"):
            state[name][painted] = 10.0
    return state


def constant_model_folder(
    root: Path,
    *,
    dataset: str,
    trainer: str,
    classes: Sequence[str],
    painted: str,
    spacing_zyx: Sequence[float] = (3.0, 3.0, 3.0),
) -> Path:
    """``root/<dataset>/<trainer>__nnUNetPlans__3d_fullres`` (fold 0 only, as TotalSegmentator ships)."""
    weights = constant_weights(len(classes) + 1, list(classes).index(painted) + 1)
    written = quick_model.write_nnunet_results_folder(
        root / "build", weights, _PROPS, plan=TEST_PLAN, classes={name: (i,) for i, name in enumerate(classes, 1)},
        spacing_zyx=spacing_zyx,
    )  # fmt: skip
    target = root / dataset / f"{trainer}__nnUNetPlans__3d_fullres"
    target.parent.mkdir(parents=True)
    written.rename(target)
    checkpoint_path = target / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(checkpoint_path, weights_only=False)
    checkpoint["trainer_name"] = trainer
    checkpoint["inference_allowed_mirroring_axes"] = None  # what the NoMirroring trainers save
    torch.save(checkpoint, checkpoint_path)
    (target / "dataset_fingerprint.json").write_text(json.dumps({"spacings": [list(spacing_zyx)]}), encoding="utf-8")
    shutil.rmtree(root / "build")
    return target


def constant_model_zip(root: Path, **kwargs) -> bytes:
    """:func:`constant_model_folder` zipped as a TotalSegmentator release (``<dataset>/<trainer>__.../...``)."""
    folder = constant_model_folder(root, **kwargs)
    return zip_folder(folder, folder.parents[1])


def demo_bundle_zip(root: Path) -> bytes:
    """The demo bundle folder zipped (``gasa-demo-btcv/model.json``, ``fold_all.safetensors``)."""
    copy = root / DEMO_BUNDLE.name
    shutil.copytree(DEMO_BUNDLE, copy)
    return zip_folder(copy, root)


def catalog_labels(classes: dict[str, int]) -> list[dict]:
    """Catalogue ``labels`` for ``classes`` (TotalSegmentator name -> value), named as TotalSegmentator does."""
    return [{"value": value, "name": name.replace("_", " "), "source_name": name} for name, value in classes.items()]


def totalseg_recipe(step_size: float = 0.8, **extra) -> dict:
    return {"name": "totalsegmentator", "step_size": step_size, "mirroring": False, "canonical_orientation": True,
            "resample_order": 1, "intensity_dtype": "int32", **extra}  # fmt: skip
