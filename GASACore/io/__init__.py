"""Reading CT volumes and writing label maps: NIfTI, NRRD, MHA, DICOM series folders and 3D Slicer ``.seg.nrrd``.

Arrays are numpy (z, y, x); geometry is SimpleITK's (x, y, z) size / spacing (mm) / origin and direction (LPS).
"""

from __future__ import annotations

from GASACore.io.cases import Case, find_cases
from GASACore.io.formats import IMAGE_SUFFIXES, LABEL_MAP_SUFFIXES
from GASACore.io.geometry import Geometry
from GASACore.io.reader import LoadedImage, read_image
from GASACore.io.writer import give_default_permissions, write_label_map

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_MAP_SUFFIXES",
    "Case",
    "Geometry",
    "LoadedImage",
    "find_cases",
    "give_default_permissions",
    "read_image",
    "write_label_map",
]
