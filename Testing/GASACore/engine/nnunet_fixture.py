"""The tests' nnU-Net v2 results folder: a small PlainConvUNet briefly trained on the real sample CT
(TotalSegmentator labels merged into background / liver / spleen / kidneys), built by :mod:`train.quick_model`
(where benchmarks get theirs too) with the test plan below."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from GASACore.network import UNetPlan
from train import quick_model
from train.quick_model import intensity_properties

__all__ = [
    "CLASSES",
    "PATCH",
    "TEST_PLAN",
    "intensity_properties",
    "load_training_case",
    "make_plans",
    "train_test_weights",
    "write_nnunet_results_folder",
]

#: TotalSegmentator ids merged into 3 classes for the test model.
CLASSES = {"liver": (5,), "spleen": (1,), "kidney": (2, 3)}
PATCH = (16, 32, 32)
TEST_PLAN = UNetPlan(
    patch_size=PATCH,
    strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((3, 3, 3),) * 4,
    features_per_stage=(4, 8, 16, 32),
)


def make_plans(spacing_zyx: Sequence[float], props: dict[str, float], name: str = "nnUNetPlans") -> dict:
    return quick_model.make_plans(spacing_zyx, props, plan=TEST_PLAN, name=name)


def load_training_case(ct_path: Path, seg_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The CT ``(z, y, x)`` in HU and its 3-class target (TotalSegmentator labels merged)."""
    return quick_model.load_training_case(ct_path, seg_path, CLASSES)


def train_test_weights(ct: np.ndarray, target: np.ndarray, iterations: int = 25) -> dict[str, torch.Tensor]:
    """Briefly trained weights of the test PlainConvUNet (deterministic for a given input)."""
    props = intensity_properties(ct, target)
    return quick_model.train_briefly(
        ct, target, props, plan=TEST_PLAN, num_classes=len(CLASSES) + 1, iterations=iterations
    )


def write_nnunet_results_folder(
    root: Path,
    weights: dict[str, torch.Tensor],
    props: dict[str, float],
    *,
    spacing_zyx: Sequence[float] = (3.0, 3.0, 3.0),
    plans_name: str = "nnUNetPlans",
) -> Path:
    """Write ``root/Dataset990_GASATest/nnUNetTrainer__<plans>__3d_fullres`` as nnU-Net v2 does; return it."""
    return quick_model.write_nnunet_results_folder(
        root, weights, props, plan=TEST_PLAN, classes=CLASSES, spacing_zyx=spacing_zyx, plans_name=plans_name
    )
