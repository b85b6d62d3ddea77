"""Fixtures of the inference tests (helpers live in inference_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from inference_helpers import Affine
from torch import nn

from GASACore.bundle import load_model
from GASACore.io import read_image
from GASACore.preprocessing import preprocess

DEMO = Path(__file__).resolve().parents[3] / "Resources" / "models" / "gasa-demo-btcv"


@pytest.fixture
def affine() -> Affine:
    return Affine()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: fast on the 2 shared CPU cores and deterministic; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def demo_and_window(example_ct: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The bundled demo model (trained weights), one patch-sized window of the real CT at its centre, and the
    model's eager logits for it."""
    bundle = load_model(DEMO)
    network = bundle.build_network()
    network.load_state_dict(bundle.load_fold(bundle.folds[0], network))
    network.eval()
    image = read_image(example_ct)
    data, _ = preprocess(image.array[None], image.geometry.spacing_zyx, bundle.preprocessing)
    starts = [(s - p) // 2 for s, p in zip(data.shape[1:], bundle.patch_size, strict=True)]
    crop = tuple(slice(b, b + p) for b, p in zip(starts, bundle.patch_size, strict=True))
    window = torch.from_numpy(data[(slice(None), *crop)].copy())[None]
    with torch.inference_mode():
        reference = network(window)
    return network, window, reference
