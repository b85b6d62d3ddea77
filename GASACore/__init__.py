"""GASACore: the GASA-UNet engine (networks, pre-processing, inference, bundles, I/O).

Pure Python on torch, numpy and SimpleITK; never imports slicer, qt, ctk or vtk.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
