"""GASACore: the GASA-UNet engine (networks, pre-processing, inference, bundles, I/O).

Pure Python on torch, numpy and SimpleITK; never imports slicer, qt, ctk or vtk. The public API:
``segment`` and ``SegmentationResult`` (imported on first use, so that ``import GASACore`` and
``gasa-segment --help`` stay fast and torch-free), and the torch-free run options ``SegmentOptions``,
``FoldSelection`` and ``Device`` (:mod:`GASACore.options`).
"""

from __future__ import annotations

from typing import Any

from GASACore.options import Device, FoldSelection, SegmentOptions

__version__ = "0.1.0"

__all__ = ["Device", "FoldSelection", "SegmentOptions", "SegmentationResult", "__version__", "segment"]

_LAZY = {"segment", "SegmentationResult"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from GASACore import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'GASACore' has no attribute {name!r}")
