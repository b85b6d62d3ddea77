"""``restore_segmentation`` details: slabs, dtypes, region models, devices (small synthetic cases)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from GASACore.preprocessing import PreprocessingConfig, preprocess, restore_segmentation

SPACING_ZYX = (3.0, 1.2, 1.0)


@pytest.fixture(scope="module")
def small_case(plans_factory, dataset_factory):
    """A 14 x 30 x 26 image (zero border) pre-processed to (2.0, 1.6, 1.4) mm: every axis resampled."""
    rng = np.random.default_rng(5)
    image = np.zeros((1, 14, 30, 26), dtype=np.int16)
    image[0, 1:13, 2:27, 3:25] = rng.integers(-1000, 1500, size=(12, 25, 22))
    plans = plans_factory((2.0, 1.6, 1.4))
    config = PreprocessingConfig.from_nnunet(plans, "3d_fullres", dataset_factory())
    _, props = preprocess(image, SPACING_ZYX, config)
    return plans, config, props


def _logits(shape: tuple[int, ...], n_classes: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn((1, n_classes, *[max(2, s // 4) for s in shape]), generator=generator)
    return F.interpolate(coarse, size=shape, mode="trilinear", align_corners=False)[0]


def _nnunet(plans, dataset, props, logits: torch.Tensor) -> np.ndarray:
    manager = PlansManager(plans)
    configuration = manager.get_configuration("3d_fullres")
    labels = manager.get_label_manager(dataset)
    return convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, manager, configuration, labels, props.to_nnunet(), num_threads_torch=1
    )


def test_slab_size_does_not_change_the_result(small_case) -> None:
    _, config, props = small_case
    logits = _logits(props.shape_after_resampling, 4)
    whole = restore_segmentation(logits, props, config, chunk_megabytes=1024)
    for megabytes in (1e-6, 0.05):
        np.testing.assert_array_equal(restore_segmentation(logits, props, config, chunk_megabytes=megabytes), whole)
    np.testing.assert_array_equal(restore_segmentation(logits.numpy(), props, config), whole)


def test_matches_nnunet_and_uses_uint16_above_255_classes(small_case, dataset_factory) -> None:
    plans, config, props = small_case
    for n_classes in (4, 300):
        logits = _logits(props.shape_after_resampling, n_classes, seed=n_classes)
        reference = _nnunet(plans, dataset_factory(n_classes=n_classes), props, logits)
        ours = restore_segmentation(logits, props, config)
        assert ours.dtype == reference.dtype == (np.uint8 if n_classes <= 255 else np.uint16)
        assert float((ours == reference).mean()) >= 0.999  # measured: 1.0


def test_region_models_paint_in_order(small_case) -> None:
    plans, config, props = small_case
    dataset = {
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "kidney_and_masses": [1, 2, 3], "masses": [2, 3], "tumor": 2},
        "regions_class_order": [1, 3, 2],
        "file_ending": ".nii.gz",
    }
    logits = _logits(props.shape_after_resampling, 3, seed=3)
    reference = _nnunet(plans, dataset, props, logits)
    ours = restore_segmentation(logits, props, config, regions_class_order=(1, 3, 2))
    assert set(np.unique(ours)) <= {0, 1, 2, 3} and len(np.unique(ours)) > 2
    assert float((ours == reference).mean()) >= 0.999  # measured: 1.0


def test_orders_above_one_are_refused(small_case) -> None:
    _, config, props = small_case
    cubic = PreprocessingConfig.from_json({**config.to_json(), "resampling": {"probabilities": {"order": 3}}})
    with pytest.raises(ValueError, match="order 0 or 1"):
        restore_segmentation(_logits(props.shape_after_resampling, 2), props, cubic)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu(small_case) -> None:
    _, config, props = small_case
    logits = _logits(props.shape_after_resampling, 6)
    cpu = restore_segmentation(logits, props, config)
    assert float((restore_segmentation(logits.cuda().half(), props, config) == cpu).mean()) >= 0.999
    assert float((restore_segmentation(logits, props, config, device="cuda") == cpu).mean()) >= 0.9999
