"""Parity with nnU-Net v2's own predictor on the real sample CT (same model folder, same settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

from GASACore import SegmentOptions, segment


def _nnunet_prediction(model: Path, ct: Path, *, mirroring: bool) -> np.ndarray:
    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=mirroring,
        perform_everything_on_device=False,
        device=torch.device("cpu"),
        verbose=False,
        verbose_preprocessing=False,
        allow_tqdm=False,
    )
    predictor.initialize_from_trained_model_folder(str(model), use_folds=(0,), checkpoint_name="checkpoint_final.pth")
    image, properties = SimpleITKIO().read_images([str(ct)])
    return np.asarray(predictor.predict_single_npy_array(image, properties, None, None, False))


def _agreement(model: Path, ct: Path, *, tta: bool) -> tuple[float, np.ndarray]:
    # float32 oneDNN, not auto: a comparison with nnU-Net's float32 arithmetic, the same on every CPU (auto runs
    # bfloat16 convolutions on CPUs with AMX; its agreement with float32 is tested in test_cpu_backend.py)
    options = SegmentOptions(device="cpu", tta=tta, cpu_backend="onednn")
    ours = segment(ct, model, options=options).labels
    theirs = _nnunet_prediction(model, ct, mirroring=tta)
    assert ours.shape == theirs.shape
    return float((ours == theirs).mean()), ours


def test_parity_same_spacing(nnunet_model: Path, example_ct: Path) -> None:
    agreement, ours = _agreement(nnunet_model, example_ct, tta=False)
    present = set(np.unique(ours).tolist())
    assert {0, 1} <= present, f"the test model must predict structure, got labels {present}"
    assert agreement >= 0.999, f"{agreement:.5f} of voxels agree with nnU-Net v2"


def test_parity_with_resampling(nnunet_model_resampling: Path, example_ct: Path) -> None:
    agreement, _ = _agreement(nnunet_model_resampling, example_ct, tta=False)
    assert agreement >= 0.999, f"{agreement:.5f} of voxels agree with nnU-Net v2"


@pytest.mark.slow
def test_parity_with_mirroring(nnunet_model_resampling: Path, example_ct: Path) -> None:
    agreement, _ = _agreement(nnunet_model_resampling, example_ct, tta=True)
    assert agreement >= 0.999, f"{agreement:.5f} of voxels agree with nnU-Net v2"
