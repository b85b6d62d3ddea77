"""The GPU path against the CPU result, on a real CUDA device (``pytest -m gpu``; scripts/gpu_check.sh runs it).

Stated tolerances: pre-processing resampling 1e-4 absolute on normalised CT (the same float32 arithmetic as
on the CPU, TF32 off); restore labels >= 99.99% equal (float32 interpolation on either device); the demo
model's whole segmentation >= 99.9% of voxels equal (fp16 autocast in the forward). Fallbacks are forced by a
really full GPU: the rest of its memory is taken before the step runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from inference_helpers import Affine, config

from GASACore.bundle import load_model
from GASACore.inference import predict_sliding_window, window_slicers
from GASACore.inference.transfer import WindowFeed
from GASACore.inference.windows import pad_to_patch
from GASACore.options import SegmentOptions
from GASACore.pipeline import segment
from GASACore.preprocessing import preprocess, resample_image, restore_segmentation

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda", 0)
DEMO = Path(__file__).resolve().parents[3] / "Resources" / "models" / "gasa-demo-btcv"


@contextmanager
def gpu_nearly_full(leave_bytes: int = 16 * 2**20) -> Iterator[None]:
    """Take all but ``leave_bytes`` of the GPU's free memory for the block."""
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info(CUDA)
    hog = torch.empty(max(0, free - leave_bytes), dtype=torch.uint8, device=CUDA)
    try:
        yield
    finally:
        del hog
        torch.cuda.empty_cache()


@pytest.fixture(scope="module")
def ct(example_ct: Path) -> np.ndarray:
    """The real CT ``(1, z, y, x)`` as float32 HU."""
    return sitk.GetArrayFromImage(sitk.ReadImage(str(example_ct))).astype(np.float32)[None]


def test_window_feed_stages_in_pinned_memory_and_reuses_it() -> None:
    image, _ = pad_to_patch(torch.randn(1, 40, 50, 30, generator=torch.Generator().manual_seed(0)), (16, 16, 16))
    slicers = window_slicers(image.shape[1:], (16, 16, 16), 0.5)
    feed = WindowFeed()
    first = feed(image, slicers[:4], CUDA)
    buffer = feed._buffer
    second = feed(image, slicers[4:8], CUDA)
    assert buffer is not None and buffer.is_pinned() and feed._buffer is buffer, "one pinned buffer, reused"
    assert first.device == CUDA and torch.equal(first.cpu(), torch.stack([image[s] for s in slicers[:4]]))
    assert torch.equal(second.cpu(), torch.stack([image[s] for s in slicers[4:8]]))


def test_forward_out_of_memory_at_the_leanest_setting_finishes_on_the_cpu(caplog: pytest.LogCaptureFixture) -> None:
    def hook(_: int, x: torch.Tensor) -> None:
        if x.is_cuda:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    net = Affine(hook=hook)
    image = torch.randn(1, 20, 31, 17, generator=torch.Generator().manual_seed(1))
    cfg = config(device=CUDA, autocast="fp32", accumulate_on_device=True, batch_size=2, mirror_axes=())
    logits = predict_sliding_window(net, image, num_classes=3, config=cfg)
    torch.testing.assert_close(logits, Affine().expected(image), rtol=1e-5, atol=1e-4)
    assert "retrying on the CPU" in caplog.text and "predicting on the CPU" in caplog.text


@pytest.mark.parametrize(
    ("spacing", "target"), [((3.0, 3.0, 3.0), (1.5, 1.75, 2.5)), ((5.0, 0.8, 0.8), (2.5, 0.75, 1.2))]
)
def test_resampling_on_the_gpu_equals_the_cpu(ct: np.ndarray, spacing: tuple, target: tuple) -> None:
    data = (np.clip(ct, -1000, 1000) - 40.0) / 300.0
    shape = tuple(round(s * c / t) for s, c, t in zip(data.shape[1:], spacing, target, strict=True))
    cpu = resample_image(data, shape, spacing, target, order=3, order_z=0)
    gpu = resample_image(data, shape, spacing, target, order=3, order_z=0, device=CUDA)
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-4)


def test_resampling_falls_back_to_the_cpu_when_the_gpu_is_full(ct: np.ndarray, caplog) -> None:
    args = ((244, 202, 224), (3.0, 3.0, 3.0), (1.5, 1.5, 1.5))
    cpu = resample_image(ct, *args)
    with gpu_nearly_full():
        gpu = resample_image(ct, *args, device=CUDA)
    assert np.array_equal(gpu, cpu) and "CUDA out of memory in pre-processing resampling" in caplog.text


def _demo_logits(ct: np.ndarray, example_ct: Path):
    bundle = load_model(DEMO)
    spacing = sitk.ReadImage(str(example_ct)).GetSpacing()[::-1]
    data, properties = preprocess(ct, spacing, bundle.preprocessing)
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn((bundle.architecture.num_classes, *data.shape[1:]), generator=generator)
    return torch.nn.functional.avg_pool3d(logits[None], 3, 1, 1)[0], properties, bundle.preprocessing


def test_restore_on_the_gpu_equals_the_cpu(ct: np.ndarray, example_ct: Path) -> None:
    logits, properties, cfg = _demo_logits(ct, example_ct)
    cpu = restore_segmentation(logits, properties, cfg, device="cpu")
    gpu = restore_segmentation(logits.to(CUDA), properties, cfg, device=CUDA)
    assert gpu.shape == cpu.shape and (gpu == cpu).mean() >= 0.9999


def test_restore_falls_back_to_the_cpu_when_the_gpu_is_full(ct: np.ndarray, example_ct: Path, caplog) -> None:
    logits, properties, cfg = _demo_logits(ct, example_ct)
    cpu = restore_segmentation(logits, properties, cfg, device="cpu")
    with gpu_nearly_full():
        gpu = restore_segmentation(logits, properties, cfg, device=CUDA, chunk_megabytes=4096)
    assert np.array_equal(gpu, cpu) and "CUDA out of memory in the restore step" in caplog.text


def test_demo_segmentation_on_the_gpu_matches_the_cpu(example_ct: Path) -> None:
    bundle = load_model(DEMO)
    cpu = segment(example_ct, bundle, options=SegmentOptions(device="cpu", tta=False))
    gpu = segment(example_ct, bundle, options=SegmentOptions(device="cuda", tta=False))
    assert gpu.device == "cuda:0" and gpu.labels.shape == cpu.labels.shape
    assert (gpu.labels == cpu.labels).mean() >= 0.999
    assert gpu.timings["total"] > 0 and cpu.labels.max() > 0
