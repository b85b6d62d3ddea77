"""``preprocess`` and ``restore_segmentation`` against nnU-Net v2 itself on the real example CT.

Measured (nnunetv2 2.8.1, scipy 1.17, torch 2.13 CPU): ``preprocess`` output is bit-identical to
``DefaultPreprocessor.run_case_npy`` in every case below (max abs diff 0.0); ``restore_segmentation``
labels are 100.000% identical to ``convert_predicted_logits_to_segmentation_with_correct_shape`` for
float32 logits and >= 99.985% for float16 logits (nnU-Net rounds the resampled logits to float16
before its argmax, creating ties that we do not have). The assertions leave a margin.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from GASACore.preprocessing import PreprocessingConfig, preprocess, restore_segmentation

CASES = {
    # target spacing (transposed order), transpose_forward, spacing_zyx override (None = the CT's 3 mm)
    "isotropic-2.5x2x2": ((2.5, 2.0, 2.0), (0, 1, 2), None),
    "no-resampling": ((3.0, 3.0, 3.0), (0, 1, 2), None),
    "anisotropic-target-axis0": ((6.5, 2.0, 2.0), (0, 1, 2), None),
    "transposed-anisotropic-axis2": ((1.0, 1.0, 3.5), (2, 0, 1), (3.0, 0.8, 0.8)),
}


@pytest.fixture(scope="module")
def run_case(padded_ct, plans_factory, dataset_factory):
    """Runs both pipelines once per case name: nnU-Net's output and properties next to ours."""
    cache: dict[str, dict] = {}

    def run(name: str) -> dict:
        if name in cache:
            return cache[name]
        target, forward, spacing_override = CASES[name]
        image, spacing = padded_ct
        spacing = list(spacing_override or spacing)
        plans, dataset = plans_factory(target, transpose_forward=forward), dataset_factory(n_classes=5)
        manager = PlansManager(plans)
        configuration = manager.get_configuration("3d_fullres")
        reference, _, nn_props = DefaultPreprocessor(verbose=False).run_case_npy(
            image, None, {"spacing": spacing}, manager, configuration, dataset
        )
        config = PreprocessingConfig.from_nnunet(plans, "3d_fullres", dataset)
        ours, props = preprocess(image, spacing, config)
        cache[name] = {
            "name": name,
            "reference": reference,
            "nn_props": nn_props,
            "ours": ours,
            "props": props,
            "config": config,
            "manager": manager,
            "configuration": configuration,
            "labels": manager.get_label_manager(dataset),
        }
        return cache[name]

    return run


@pytest.fixture(params=sorted(CASES))
def case(request, run_case):
    return run_case(request.param)


def test_preprocess_equals_default_preprocessor(case) -> None:
    reference, ours, props, nn_props = case["reference"], case["ours"], case["props"], case["nn_props"]
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    assert ours.shape == reference.shape
    assert float(np.abs(ours - reference).max()) < 1e-5  # measured: 0.0
    assert [list(b) for b in props.bbox] == [list(b) for b in nn_props["bbox_used_for_cropping"]]
    assert props.shape_before_cropping == tuple(nn_props["shape_before_cropping"])
    assert props.shape_after_cropping == tuple(nn_props["shape_after_cropping_and_before_resampling"])
    if case["name"] != "no-resampling":
        assert props.shape_after_resampling != props.shape_after_cropping


def _smooth_logits(shape: tuple[int, ...], n_classes: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn((1, n_classes, *[max(2, s // 8) for s in shape]), generator=generator)
    return F.interpolate(coarse, size=shape, mode="trilinear", align_corners=False)[0] * 3


def _nnunet_labels(case, logits: torch.Tensor) -> np.ndarray:
    return convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, case["manager"], case["configuration"], case["labels"], case["nn_props"], num_threads_torch=2
    )


def test_restore_matches_nnunet_export(case) -> None:
    logits = _smooth_logits(case["props"].shape_after_resampling, 5, seed=7)
    reference = _nnunet_labels(case, logits)
    ours = restore_segmentation(logits, case["props"], case["config"])
    assert ours.shape == reference.shape == case["props"].original_shape
    assert ours.dtype == reference.dtype == np.uint8
    agreement = float((ours == reference).mean())
    if case["name"] == "no-resampling":
        np.testing.assert_array_equal(ours, reference)
    assert agreement >= 0.9999  # measured: 1.0 in every case
    assert (ours[:3] == 0).all() and (ours[:, :, :5] == 0).all()  # zero padding = outside the crop = background


def test_restore_float16_logits(run_case) -> None:
    """One case only: nnU-Net's float16 path is slow."""
    case = run_case("isotropic-2.5x2x2")
    logits = _smooth_logits(case["props"].shape_after_resampling, 5, seed=11).half()
    reference = _nnunet_labels(case, logits)
    ours = restore_segmentation(logits, case["props"], case["config"], chunk_megabytes=4)
    assert float((ours == reference).mean()) >= 0.999  # measured: >= 0.99985
