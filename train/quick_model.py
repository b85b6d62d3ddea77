"""A briefly trained nnU-Net v2 results folder from the one training CT: for tests and benchmarks.

Writes ``plans.json``, ``dataset.json`` and ``fold_0/checkpoint_final.pth`` exactly as nnU-Net v2 does, for a
PlainConvUNet of any plan, trained for a few dozen SGD steps on random patches of the real sample CT
(``example_ct``, TotalSegmentator's labels merged into a few classes) so that its predictions are structured,
not constant or noise. Only ``example_ct`` is trained on; every other scan stays unseen.

Example::

    ct, target = load_training_case(ct_path, seg_path, CLASSES)
    props = intensity_properties(ct, target)
    weights = train_briefly(ct, target, props, plan=plan, num_classes=len(CLASSES) + 1, iterations=25)
    folder = write_nnunet_results_folder(root, weights, props, plan=plan, classes=CLASSES, spacing_zyx=(3, 3, 3))
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from GASACore.network import UNetPlan, build_network

__all__ = [
    "intensity_properties",
    "load_training_case",
    "make_plans",
    "train_briefly",
    "write_nnunet_results_folder",
]


def _ct_normalise(image: np.ndarray, props: Mapping[str, float]) -> np.ndarray:
    clipped = np.clip(image, props["percentile_00_5"], props["percentile_99_5"])
    return ((clipped - props["mean"]) / max(props["std"], 1e-8)).astype(np.float32)


def intensity_properties(ct: np.ndarray, seg: np.ndarray) -> dict[str, float]:
    """nnU-Net's foreground intensity statistics (HU, over the voxels where ``seg > 0``)."""
    values = ct[seg > 0].astype(np.float64)
    return {
        "max": float(values.max()),
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "min": float(values.min()),
        "percentile_00_5": float(np.percentile(values, 0.5)),
        "percentile_99_5": float(np.percentile(values, 99.5)),
        "std": float(values.std()),
    }


def load_training_case(
    ct_path: Path, seg_path: Path, classes: Mapping[str, Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The CT ``(z, y, x)`` in HU and its target: class ``i`` (from 1) where the labels hold the ids of entry ``i``."""
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(ct_path))).astype(np.float32)
    total = sitk.GetArrayFromImage(sitk.ReadImage(str(seg_path)))
    target = np.zeros(total.shape, np.uint8)
    for value, ids in enumerate(classes.values(), start=1):
        target[np.isin(total, list(ids))] = value
    return ct, target


def train_briefly(
    ct: np.ndarray,
    target: np.ndarray,
    props: Mapping[str, float],
    *,
    plan: UNetPlan,
    num_classes: int,
    iterations: int = 25,
    patch: Sequence[int] | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A PlainConvUNet's weights after ``iterations`` SGD steps on random foreground-centred patches.

    Args:
        ct: ``(z, y, x)`` HU; normalised here with nnU-Net's CT scheme and ``props``.
        target: ``(z, y, x)`` class per voxel, same shape.
        plan: the network's plan; ``patch`` (default ``plan.patch_size``), the training patch, must be divisible
            by its strides (the weights do not depend on it).
        num_classes: output channels, background included.
        iterations: SGD steps (batch 1, lr 0.05, Nesterov momentum 0.9); deterministic for a given input.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    size = tuple(int(p) for p in (patch or plan.patch_size))
    image = _ct_normalise(ct, props)
    # the weights do not depend on the patch: train at ``size``, infer at ``plan.patch_size``
    training_plan = dataclasses.replace(plan, patch_size=size)
    network = build_network("nnunet", plan=training_plan, num_input_channels=1, num_classes=num_classes)
    optimiser = torch.optim.SGD(network.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    foreground = np.argwhere(target > 0)
    for _ in range(iterations):
        centre = foreground[rng.integers(len(foreground))]
        lo = [int(np.clip(c - p // 2, 0, max(s - p, 0))) for c, p, s in zip(centre, size, image.shape, strict=True)]
        window = tuple(slice(a, a + p) for a, p in zip(lo, size, strict=True))
        x = torch.from_numpy(np.ascontiguousarray(image[window]))[None, None]
        y = torch.from_numpy(target[window][None].astype(np.int64))
        pad = [v for axis in reversed(range(3)) for v in (0, size[axis] - x.shape[2 + axis])]
        x, y = torch.nn.functional.pad(x, pad), torch.nn.functional.pad(y, pad)
        optimiser.zero_grad()
        output = network(x)
        loss = torch.nn.functional.cross_entropy(output[0] if isinstance(output, (list, tuple)) else output, y)
        loss.backward()
        optimiser.step()
    return network.state_dict()


def make_plans(
    spacing_zyx: Sequence[float], props: Mapping[str, float], *, plan: UNetPlan, name: str = "nnUNetPlans"
) -> dict:
    """nnU-Net v2's ``plans.json`` for a PlainConvUNet of ``plan`` at ``spacing_zyx`` (mm) with CT normalisation."""
    arch_kwargs = {
        "n_stages": plan.n_stages,
        "features_per_stage": list(plan.features_per_stage),
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [list(k) for k in plan.kernel_sizes],
        "strides": [list(s) for s in plan.strides],
        "n_conv_per_stage": list(plan.n_conv_per_stage),
        "n_conv_per_stage_decoder": list(plan.n_conv_per_stage_decoder),
        "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    configuration = {
        "data_identifier": f"{name}_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": list(plan.patch_size),
        "median_image_size_in_voxels": [112, 101, 122],
        "spacing": [float(s) for s in spacing_zyx],
        "normalization_schemes": ["CTNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": arch_kwargs,
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        },
        "batch_dice": False,
    }
    return {
        "dataset_name": "Dataset990_GASATest",
        "plans_name": name,
        "original_median_spacing_after_transp": [3.0, 3.0, 3.0],
        "original_median_shape_after_transp": [112, 101, 122],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": configuration},
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": dict(props)},
    }


def write_nnunet_results_folder(
    root: Path,
    weights: Mapping[str, torch.Tensor],
    props: Mapping[str, float],
    *,
    plan: UNetPlan,
    classes: Mapping[str, Sequence[int]],
    spacing_zyx: Sequence[float] = (3.0, 3.0, 3.0),
    plans_name: str = "nnUNetPlans",
) -> Path:
    """Write ``root/Dataset990_GASATest/nnUNetTrainer__<plans>__3d_fullres`` as nnU-Net v2 does; return it."""
    folder = root / "Dataset990_GASATest" / f"nnUNetTrainer__{plans_name}__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    plans = make_plans(spacing_zyx, props, plan=plan, name=plans_name)
    dataset = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, **{name: i for i, name in enumerate(classes, start=1)}},
        "numTraining": 1,
        "file_ending": ".nii.gz",
    }
    (folder / "plans.json").write_text(json.dumps(plans, indent=2))
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=2))
    checkpoint = {
        "network_weights": dict(weights),
        "optimizer_state": None,
        "grad_scaler_state": None,
        # Stock nnU-Net logs numpy scalars: loading must still work with weights_only=True.
        "logging": {"ema_fg_dice": [np.float64(0.25)], "mean_fg_dice": [np.float32(0.2)], "epoch_end_timestamps": []},
        "_best_ema": np.float64(0.25),
        "current_epoch": 1,
        "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": 0, "dataset_json": dataset},
        "trainer_name": "nnUNetTrainer",
        "inference_allowed_mirroring_axes": (0, 1, 2),
    }
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
    return folder
