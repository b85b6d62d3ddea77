"""The one tiny GASA-UNet the tests build: a small plan, a coarse pre-processing and a bundle writer.

Random weights (seeded), the 13 BTCV organs: real enough for every code path (bundle files, the engine,
the Slicer module), small enough to segment a CT in about a second. Imported by the bundle, engine and
Slicer-module tests (``Testing/`` is on ``sys.path`` through its ``conftest.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from GASACore.network import UNetPlan
from GASACore.preprocessing import IntensityProperties, PreprocessingConfig

__all__ = ["TINY_PLAN", "TINY_PREPROCESSING", "tiny_preprocessing", "write_tiny_bundle"]

#: A GASA-UNet small enough to segment a CT crop in a second: bottleneck 2 x 4 x 4.
TINY_PLAN = UNetPlan(
    patch_size=(16, 32, 32),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(4, 8, 16, 16),
)


def tiny_preprocessing(spacing: Sequence[float]) -> PreprocessingConfig:
    """CT-like intensity statistics and the tiny plan's patch at ``spacing`` (x, y, z) mm."""
    return PreprocessingConfig(
        spacing=tuple(float(s) for s in spacing),
        patch_size=TINY_PLAN.patch_size,
        intensity_properties=(
            IntensityProperties(mean=50.0, std=100.0, percentile_00_5=-1000.0, percentile_99_5=1000.0),
        ),
    )


#: 12 mm target spacing (x, y, z = 12.5, 12, 10 mm for variety): few windows on any CT.
TINY_PREPROCESSING = tiny_preprocessing((12.5, 12.0, 10.0))


def write_tiny_bundle(
    target: Path,
    *,
    spacing: Sequence[float] = (12.5, 12.0, 10.0),
    name: str = "tiny-btcv",
    block_options: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save the tiny GASA-UNet (seed 0, BTCV labels) as a bundle folder ``target``; returns ``target``.

    Args:
        spacing: the bundle's target spacing (x, y, z) in mm (coarser = fewer windows).
        name: the bundle's ``metadata.name``.
        block_options: GASA block options (``{"dim": 10, "heads": 2}``); the block's defaults when ``None``.
        metadata: more ``metadata`` fields (licence, intended use ...).
    """
    import torch

    from GASACore.bundle import ArchitectureSpec, save_bundle
    from GASACore.labels import BTCV_LABELS
    from GASACore.network import build_network

    options = dict(block_options or {})
    torch.manual_seed(0)
    classes = len(BTCV_LABELS) + 1
    weights = build_network(
        "gasa-unet", plan=TINY_PLAN, num_input_channels=1, num_classes=classes, **options
    ).state_dict()
    save_bundle(
        target,
        metadata={
            "name": name,
            "version": "0.0.1",
            "description": "test bundle with random weights",
            **(metadata or {}),
        },
        architecture=ArchitectureSpec("gasa-unet", TINY_PLAN, 1, classes, options),
        preprocessing=tiny_preprocessing(spacing),
        labels=BTCV_LABELS,
        fold_weights={"fold_0": weights},
    )
    return target
