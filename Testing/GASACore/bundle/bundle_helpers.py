"""Small, fast model parts for the bundle tests (imported by their conftest and tests)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tiny_models import TINY_PLAN, TINY_PREPROCESSING

__all__ = ["TINY_PLAN", "TINY_PREPROCESSING", "zip_folder"]  # the tiny plan lives in Testing/tiny_models.py


def zip_folder(folder: Path, archive: Path, inner: str = "model") -> Path:
    """``archive`` holding every file of ``folder`` under ``inner/``."""
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, f"{inner}/{file.name}")
    return archive
