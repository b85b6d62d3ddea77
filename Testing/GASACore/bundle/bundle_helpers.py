"""Small, fast model parts for the bundle tests (imported by their conftest and tests)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from GASACore.network import UNetPlan
from GASACore.preprocessing import IntensityProperties, PreprocessingConfig

__all__ = ["TINY_PLAN", "TINY_PREPROCESSING", "zip_folder"]

#: A GASA-UNet small enough to segment a CT crop in a second: bottleneck 2 x 4 x 4.
TINY_PLAN = UNetPlan(
    patch_size=(16, 32, 32),
    strides=((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)),
    kernel_sizes=((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    features_per_stage=(4, 8, 16, 16),
)
#: 12 mm target spacing (x, y, z = 10, 12, 12.5 mm for variety): few windows on any CT.
TINY_PREPROCESSING = PreprocessingConfig(
    spacing=(12.5, 12.0, 10.0),
    patch_size=TINY_PLAN.patch_size,
    intensity_properties=(IntensityProperties(mean=50.0, std=100.0, percentile_00_5=-1000.0, percentile_99_5=1000.0),),
)


def zip_folder(folder: Path, archive: Path, inner: str = "model") -> Path:
    """``archive`` holding every file of ``folder`` under ``inner/``."""
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, f"{inner}/{file.name}")
    return archive
