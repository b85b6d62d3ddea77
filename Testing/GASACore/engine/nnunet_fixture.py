"""Build a real nnU-Net v2 results folder for tests: plans.json, dataset.json, fold_0/checkpoint_final.pth.

The network is a small nnU-Net PlainConvUNet trained for a few dozen SGD steps on the real sample CT
(TotalSegmentator labels merged into background / liver / spleen / kidneys) so that its predictions
are structured, not constant or noise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from GASACore.network import UNetPlan, build_network

#: TotalSegmentator ids merged into 3 classes for the test model.
CLASSES = {"liver": (5,), "spleen": (1,), "kidney": (2, 3)}
PATCH = (16, 32, 32)
TEST_PLAN = UNetPlan(
    patch_size=PATCH,
    strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((3, 3, 3),) * 4,
    features_per_stage=(4, 8, 16, 32),
)


def _ct_normalise(image: np.ndarray, props: dict[str, float]) -> np.ndarray:
    clipped = np.clip(image, props["percentile_00_5"], props["percentile_99_5"])
    return ((clipped - props["mean"]) / max(props["std"], 1e-8)).astype(np.float32)


def intensity_properties(ct: np.ndarray, seg: np.ndarray) -> dict[str, float]:
    """nnU-Net's foreground intensity statistics (over labelled voxels)."""
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


def make_plans(spacing_zyx: Sequence[float], props: dict[str, float], name: str = "nnUNetPlans") -> dict:
    arch_kwargs = {
        "n_stages": TEST_PLAN.n_stages,
        "features_per_stage": list(TEST_PLAN.features_per_stage),
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [list(k) for k in TEST_PLAN.kernel_sizes],
        "strides": [list(s) for s in TEST_PLAN.strides],
        "n_conv_per_stage": list(TEST_PLAN.n_conv_per_stage),
        "n_conv_per_stage_decoder": list(TEST_PLAN.n_conv_per_stage_decoder),
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
        "patch_size": list(PATCH),
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
        "foreground_intensity_properties_per_channel": {"0": props},
    }


def _train(ct: np.ndarray, target: np.ndarray, iterations: int, seed: int) -> dict[str, torch.Tensor]:
    """A few SGD steps on random patches of ``ct`` ``(z, y, x)`` normalised, ``target`` same shape."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = build_network("nnunet", plan=TEST_PLAN, num_input_channels=1, num_classes=len(CLASSES) + 1)
    optimiser = torch.optim.SGD(network.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    foreground = np.argwhere(target > 0)
    for _ in range(iterations):
        centre = foreground[rng.integers(len(foreground))]
        lo = [int(np.clip(c - p // 2, 0, s - p)) for c, p, s in zip(centre, PATCH, ct.shape, strict=True)]
        window = tuple(slice(a, a + p) for a, p in zip(lo, PATCH, strict=True))
        x = torch.from_numpy(ct[window][None, None])
        y = torch.from_numpy(target[window][None].astype(np.int64))
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(network(x), y)
        loss.backward()
        optimiser.step()
    return network.state_dict()


def load_training_case(ct_path: Path, seg_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The CT ``(z, y, x)`` in HU and its 3-class target (TotalSegmentator labels merged)."""
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(ct_path))).astype(np.float32)
    total = sitk.GetArrayFromImage(sitk.ReadImage(str(seg_path)))
    target = np.zeros(total.shape, np.uint8)
    for value, ids in enumerate(CLASSES.values(), start=1):
        target[np.isin(total, ids)] = value
    return ct, target


def train_test_weights(ct: np.ndarray, target: np.ndarray, iterations: int = 25) -> dict[str, torch.Tensor]:
    """Briefly trained weights of the test PlainConvUNet (deterministic for a given input)."""
    return _train(_ct_normalise(ct, intensity_properties(ct, target)), target, iterations, seed=0)


def write_nnunet_results_folder(
    root: Path,
    weights: dict[str, torch.Tensor],
    props: dict[str, float],
    *,
    spacing_zyx: Sequence[float] = (3.0, 3.0, 3.0),
    plans_name: str = "nnUNetPlans",
) -> Path:
    """Write ``root/Dataset990_GASATest/nnUNetTrainer__<plans>__3d_fullres`` as nnU-Net v2 does; return it."""
    folder = root / "Dataset990_GASATest" / f"nnUNetTrainer__{plans_name}__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    plans = make_plans(spacing_zyx, props, plans_name)
    dataset = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, **{name: i for i, name in enumerate(CLASSES, start=1)}},
        "numTraining": 1,
        "file_ending": ".nii.gz",
    }
    (folder / "plans.json").write_text(json.dumps(plans, indent=2))
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=2))
    checkpoint = {
        "network_weights": weights,
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
