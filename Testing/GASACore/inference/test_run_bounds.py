"""Background logits per output type on both accumulation paths, and the arithmetic window-count bound."""

from __future__ import annotations

import time

import pytest
import torch

from GASACore.errors import InputError
from GASACore.inference import SlidingWindowConfig, background_logits, check_window_count, predict_sliding_window
from GASACore.inference.windows import window_count, window_slicers


def test_background_logits_per_output_type() -> None:
    assert background_logits(3, regions=False) == (10.0, -10.0, -10.0)
    assert background_logits(2, regions=True) == (-10.0, -10.0)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1, got 0"):
        background_logits(0, regions=False)


class _Constant(torch.nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes, self.weight = classes, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones((x.shape[0], self.classes, *x.shape[2:])) + self.weight


@pytest.mark.parametrize("sums", ["fp32", "fp16"])
@pytest.mark.parametrize("regions", [False, True])
def test_skipped_windows_get_background_of_output_type(sums: str, regions: bool) -> None:
    image = torch.full((1, 16, 16, 16), -5.0)
    config = SlidingWindowConfig(
        patch_size=(8, 8, 8), mirror_axes=(), device=torch.device("cpu"), skip_threshold=0.0, logit_sums=sums,
        regions=regions,
    )  # fmt: skip
    logits = predict_sliding_window(_Constant(3), image, num_classes=3, config=config).float()
    expected = torch.tensor(background_logits(3, regions=regions)).view(3, 1, 1, 1).expand_as(logits)
    assert torch.equal(logits, expected)
    if regions:
        assert not (torch.sigmoid(logits) > 0.5).any()
    else:
        assert (logits.argmax(0) == 0).all()


def test_window_count_matches_listing() -> None:
    for image, patch, step in [((110, 64, 64), (64, 64, 64), 0.5), ((300, 200, 97), (128, 96, 80), 0.33)]:
        assert window_count(image, patch, step) == len(window_slicers(image, patch, step))
    assert window_count((10, 10, 10), (16, 16, 16), 0.5) == 1  # padded to the patch


def test_tiny_step_counted_not_listed() -> None:
    start = time.perf_counter()
    words = r"expected at most 100000 sliding windows, but an image of 512x512x300 voxels with patch 128x128x128"
    with pytest.raises(InputError, match=words + r" and step 1e-09 needs \d+ windows"):
        window_slicers((512, 512, 300), (128, 128, 128), 1e-9)
    assert time.perf_counter() - start < 1
    assert check_window_count((512, 512, 300), (128, 128, 128), 0.5) == 7 * 7 * 4


def test_window_limit_override(monkeypatch) -> None:
    monkeypatch.setenv("GASA_MAX_WINDOWS", "10")
    with pytest.raises(InputError, match=r"expected at most 10 sliding windows.*needs 196 windows"):
        check_window_count((512, 512, 300), (128, 128, 128), 0.5)
    assert check_window_count((512, 512, 300), (128, 128, 128), 0.5, limit=196) == 196
