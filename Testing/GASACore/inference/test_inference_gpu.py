"""CUDA paths of predict_sliding_window and select_device: run with ``pytest -m gpu`` on a GPU machine."""

from __future__ import annotations

import pytest
import torch
from inference_helpers import PATCH, SMALL_PLAN, Affine, config

from GASACore.errors import GASAError
from GASACore.inference import check_device, predict_sliding_window, select_device
from GASACore.network import build_network

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda", 0)


def _image(*shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def test_select_device_picks_cuda() -> None:
    device, reason = select_device("auto")
    assert device == torch.device("cuda", 0) and reason.endswith("is usable")


def test_check_device_reports_the_gpu() -> None:
    report = check_device("auto")
    assert report["device"] == "cuda:0" and report["cuda_usable"] is True and report["cuda_built"] is True
    gpu = report["gpus"][0]
    assert gpu["name"] == torch.cuda.get_device_name(0) and gpu["supported"] and gpu["memory_gib"] > 1
    assert gpu["capability"] == "{}.{}".format(*torch.cuda.get_device_capability(0))
    assert report["cuda"] == torch.version.cuda and report["arch_list"] == torch.cuda.get_arch_list()


@pytest.mark.parametrize("on_device", [True, False])
def test_linear_oracle_on_cuda(on_device: bool) -> None:
    net = Affine()
    image = _image(1, 20, 31, 17)
    cfg = config(device=CUDA, autocast="fp32", accumulate_on_device=on_device, batch_size=3)
    logits = predict_sliding_window(net, image, num_classes=3, config=cfg)
    assert logits.device.type == "cpu" and not logits.is_inference()
    torch.testing.assert_close(logits, Affine().expected(image), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("autocast", "tolerance", "agreement"), [("fp32", 3e-2, 0.995), ("fp16", 1e-1, 0.99)])
def test_unet_on_cuda_matches_cpu(autocast: str, tolerance: float, agreement: float) -> None:
    torch.manual_seed(0)
    net = build_network("nnunet", plan=SMALL_PLAN, num_input_channels=1, num_classes=4)
    image = _image(1, 24, 48, 48)
    cpu = predict_sliding_window(net, image, num_classes=4, config=config(patch_size=SMALL_PLAN.patch_size))
    gpu = predict_sliding_window(
        net, image, num_classes=4, config=config(patch_size=SMALL_PLAN.patch_size, device=CUDA, autocast=autocast)
    )
    assert ((gpu - cpu).abs() / (1 + cpu.abs())).max() <= tolerance  # TF32 / fp16 convolutions
    assert (gpu.argmax(0) == cpu.argmax(0)).float().mean() >= agreement


def test_out_of_memory_while_accumulating_on_gpu_falls_back_to_cpu(caplog: pytest.LogCaptureFixture) -> None:
    def hook(call: int, _: torch.Tensor) -> None:
        if call == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    net = Affine(hook=hook)
    image = _image(1, 20, 31, 17)
    cfg = config(device=CUDA, autocast="fp32", accumulate_on_device=True, mirror_axes=())
    logits = predict_sliding_window(net, image, num_classes=3, config=cfg)
    torch.testing.assert_close(logits, Affine().expected(image), rtol=1e-5, atol=1e-4)
    assert "retrying on the CPU" in caplog.text
    assert net.calls == 1 + 1 + 60  # first window, failing second, then every window again


def test_fp16_overflow_is_reported() -> None:
    net = Affine(scales=(1e6, 1.0, 1.0), shifts=(0.0, 0.0, 0.0))
    with pytest.raises(GASAError, match=r"non-finite logits \(NaN or inf\) under fp16 autocast in fold 0"):
        predict_sliding_window(net, _image(1, *PATCH) * 100, num_classes=3, config=config(device=CUDA))
