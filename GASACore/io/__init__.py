"""Reading CT volumes and writing label maps: NIfTI, NRRD, MHA, DICOM series folders and 3D Slicer ``.seg.nrrd``.

Arrays are numpy (z, y, x); geometry is SimpleITK's (x, y, z) size / spacing (mm) / origin and direction (LPS).
Every reader checks what a header claims (voxel bytes, data files, grid) before allocating: see
:func:`read_image`, :mod:`GASACore.io.limits` (``GASA_MAX_IMAGE_BYTES``) and :mod:`GASACore.io.grid`.
"""

from __future__ import annotations

from GASACore.io.atomic import atomic_output, give_default_permissions
from GASACore.io.cases import Case, find_cases
from GASACore.io.formats import IMAGE_SUFFIXES, LABEL_MAP_SUFFIXES
from GASACore.io.geometry import Geometry
from GASACore.io.limits import MAX_IMAGE_BYTES_ENV, max_image_bytes
from GASACore.io.reader import LoadedImage, read_image
from GASACore.io.writer import write_label_map

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_MAP_SUFFIXES",
    "MAX_IMAGE_BYTES_ENV",
    "Case",
    "Geometry",
    "LoadedImage",
    "atomic_output",
    "find_cases",
    "give_default_permissions",
    "max_image_bytes",
    "read_image",
    "write_label_map",
]
