"""Pre-normalised float16 logit sums: the helpers' worked examples, linear oracles within float16 rounding, folds,
uncovered voxels, and argmax agreement with float32 sums on real CT with the trained demo model.

Tolerances: each window adds a share of its logit rounded to float16 (relative 2**-11 = 4.9e-4), and a voxel sums
at most 8 shares here, so the oracle allows 4e-3 relative (+ 4e-3 absolute). On real CT the argmax must agree with
float32 sums on >= 99.99% of voxels (measured 99.9985% on the sample CT, bench/window_memory_bench.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from inference_helpers import PATCH, Affine, config

from GASACore.bundle import load_model
from GASACore.inference import SKIPPED_LOGITS, SlidingWindowConfig, predict_sliding_window
from GASACore.inference.accumulation import LogitSums, add_window, half_sums, prenormalised_weights
from GASACore.io import read_image
from GASACore.preprocessing import preprocess

DEMO = Path(__file__).resolve().parents[3] / "Resources" / "models" / "gasa-demo-btcv"
HALF_TOL = {"rtol": 4e-3, "atol": 4e-3}
MIN_AGREEMENT = 0.9999


def _image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_which_device_gets_half_sums() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert half_sums("auto", cpu) and not half_sums(LogitSums.AUTO, cuda)
    assert half_sums("fp16", cuda) and not half_sums("fp32", cpu)
    with pytest.raises(ValueError, match="'fp8'"):
        half_sums("fp8", cpu)
    with pytest.raises(ValueError, match=r"logit_sums must be one of \['auto', 'fp16', 'fp32'\], got 'half'"):
        SlidingWindowConfig(patch_size=PATCH, logit_sums="half")


def test_prenormalised_weights_worked_example() -> None:
    sums, uncovered = prenormalised_weights(torch.tensor([1.0, 2.0, 1.0, 0.0]).view(4, 1, 1), n_folds=2)
    assert sums.flatten().tolist() == [2.0, 4.0, 2.0, 1.0]
    assert uncovered is not None and uncovered.flatten().tolist() == [False, False, False, True]
    assert prenormalised_weights(torch.ones(2, 1, 1), n_folds=1)[1] is None


def test_shares_add_back_to_the_mean() -> None:
    """Two overlapping windows of weight 1 (no Gaussian) and 2 folds: the shares sum to the mean logit."""
    divisor, _ = prenormalised_weights(torch.tensor([1.0, 2.0, 1.0]).view(1, 3, 1), n_folds=2)
    sums = torch.zeros(1, 1, 3, 1, dtype=torch.float16)
    first = (slice(None), slice(0, 1), slice(0, 2), slice(None))
    second = (slice(None), slice(0, 1), slice(1, 3), slice(None))
    for _fold in range(2):
        add_window(sums, first, torch.full((1, 1, 2, 1), 3.0), None, divisor)
        add_window(sums, second, torch.full((1, 1, 2, 1), 5.0), None, divisor)
    assert sums.flatten().tolist() == [3.0, 4.0, 5.0]


@pytest.mark.parametrize("shape", [(1, 20, 31, 17), (1, 5, 7, 3), (2, 13, 12, 25)])
@pytest.mark.parametrize(("mirror_axes", "use_gaussian"), [((), True), ((0, 1, 2), True), ((), False)])
def test_linear_oracle_with_half_sums(shape: tuple[int, ...], mirror_axes: tuple[int, ...], use_gaussian: bool) -> None:
    image = _image(*shape)
    cfg = config(mirror_axes=mirror_axes, use_gaussian=use_gaussian, logit_sums="fp16")
    affine = Affine()
    logits = predict_sliding_window(affine, image, num_classes=3, config=cfg)
    assert logits.dtype == torch.float16 and not logits.is_inference()
    torch.testing.assert_close(logits.float(), affine.expected(image), **HALF_TOL)


def test_half_sums_average_folds_and_fill_skipped_windows() -> None:
    image = _image(1, 20, 31, 17)
    image[:, :, 15:] = -5.0  # air: its windows are skipped
    folds = [Affine().state_dict(), Affine(scales=(2.0, 1.0, -1.0), shifts=(1.0, 0.0, 0.5)).state_dict()]
    half, full = (
        predict_sliding_window(
            Affine(), image, num_classes=3, config=config(mirror_axes=(), skip_threshold=-4.0, logit_sums=sums),
            fold_weights=folds,
        )
        for sums in ("fp16", "fp32")
    )  # fmt: skip
    assert half.dtype == torch.float16 and full.dtype == torch.float32
    torch.testing.assert_close(half.float(), full, **HALF_TOL)
    skipped = full[0] == SKIPPED_LOGITS[0]
    assert skipped.any() and (half[0][skipped] == SKIPPED_LOGITS[0]).all() and (half[1:, skipped] == -10).all()


def _demo_logits(ct: Path, sums: str) -> tuple[torch.Tensor, tuple[int, ...]]:
    bundle = load_model(DEMO)
    network = bundle.build_network()
    image = read_image(ct)
    data, _ = preprocess(image.array[None], image.geometry.spacing_zyx, bundle.preprocessing)
    cfg = SlidingWindowConfig(
        patch_size=bundle.patch_size,
        mirror_axes=(),
        device=torch.device("cpu"),
        num_threads=1,
        logit_sums=sums,
        cpu_backend="onednn",  # float32 forward passes on every CPU: only the sums differ between the two runs
    )
    folds = [bundle.load_fold(fold, network) for fold in bundle.folds]
    logits = predict_sliding_window(
        network, torch.from_numpy(data), num_classes=bundle.architecture.num_classes, config=cfg, fold_weights=folds
    )
    return logits, data.shape


@pytest.mark.parametrize("case", ["sample", pytest.param("dicom", marks=pytest.mark.slow)])
def test_half_sums_agree_with_float32_on_real_ct_with_the_demo_model(shared_data: Path, case: str) -> None:
    """The engine's CPU default (float16 pre-normalised) against float32 sums, whole real CTs, trained model."""
    ct = shared_data / "totalsegmentator" / ("example_ct.nii.gz" if case == "sample" else "example_ct_dicom")
    half, shape = _demo_logits(ct, "fp16")
    full, _ = _demo_logits(ct, "fp32")
    assert half.dtype == torch.float16 and tuple(half.shape[1:]) == tuple(shape[1:])
    labels_full = full.argmax(0)
    assert len(torch.unique(labels_full)) >= 2, "the demo model must find something in the CT"
    agreement = float((half.float().argmax(0) == labels_full).double().mean())
    assert agreement >= MIN_AGREEMENT, f"{agreement:.6%}"
    relative = (half.float() - full).abs() / (1 + full.abs())
    assert float(relative.max()) <= 5e-3
