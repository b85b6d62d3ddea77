"""Helpers for the cohort tests (a module of its own: test files import it by name, never ``conftest``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_cohort"]


def make_cohort(folder: Path, crops: dict[str, Path], *, corrupt: bool = True) -> Path:
    """``folder`` holding copies of the crops and, with ``corrupt``, ``corrupt.nii.gz``: a real CT cut in half."""
    folder.mkdir(parents=True)
    for path in crops.values():
        (folder / path.name).write_bytes(path.read_bytes())
    if corrupt:
        data = crops["case1"].read_bytes()
        (folder / "corrupt.nii.gz").write_bytes(data[: len(data) // 2])
    return folder
