"""Fixtures of the inference tests (helpers live in inference_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from inference_helpers import Affine


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
