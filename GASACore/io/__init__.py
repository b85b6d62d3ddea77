"""Reading CT volumes and writing label maps: NIfTI, NRRD, MHA, DICOM series folders and 3D Slicer ``.seg.nrrd``.

Arrays are numpy (z, y, x); geometry is SimpleITK's (x, y, z) size / spacing (mm) / origin and direction (LPS).
Every reader checks what a header claims (voxel bytes, data files, grid) before allocating: see
:func:`read_image`, :mod:`GASACore.io.limits` (``GASA_MAX_IMAGE_BYTES``) and :mod:`GASACore.io.grid`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers (at run time they are imported on first use)
    from GASACore.io.atomic import atomic_output, give_default_permissions, stale_temporaries
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
    "stale_temporaries",
    "write_label_map",
]

#: Public name -> defining module. Imported on first use, so that the light modules (``atomic``, ``formats``:
#: standard library only) can be used without loading the readers' SimpleITK / nibabel.
_EXPORTS = {
    "IMAGE_SUFFIXES": "formats",
    "LABEL_MAP_SUFFIXES": "formats",
    "MAX_IMAGE_BYTES_ENV": "limits",
    "Case": "cases",
    "Geometry": "geometry",
    "LoadedImage": "reader",
    "atomic_output": "atomic",
    "find_cases": "cases",
    "give_default_permissions": "atomic",
    "max_image_bytes": "limits",
    "read_image": "reader",
    "stale_temporaries": "atomic",
    "write_label_map": "writer",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'GASACore.io' has no attribute {name!r}")
    return getattr(importlib.import_module(f"GASACore.io.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
