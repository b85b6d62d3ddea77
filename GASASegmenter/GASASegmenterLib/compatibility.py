"""Which 3D Slicer (and so which Python) the module supports, and the message when it runs in an older one.

Slicer 5.10 is the first release that ships Python 3.12 (5.6 and 5.8 ship 3.9, which cannot run this
code). ``README.md``, the extension's ``CMakeLists.txt`` and this check say the same; a test keeps them in
step. This file and ``GASASegmenter.py`` stay parseable by Python 3.9, so that an older Slicer loads them
and shows the message instead of a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["MINIMUM_PYTHON", "MINIMUM_SLICER", "unsupportedMessage"]

#: The oldest Slicer release supported, and the Python it ships.
MINIMUM_SLICER = (5, 10)
MINIMUM_PYTHON = (3, 12)


def unsupportedMessage(python=None, slicerVersion=None) -> str:
    """Why this Slicer cannot run the module (``""`` when it can).

    Args:
        python: ``(major, minor, ...)`` of the running Python (default ``sys.version_info``).
        slicerVersion: ``(major, minor)`` of the running Slicer, ``None`` when unknown (outside the application).

    Example: ``unsupportedMessage((3, 9, 10), (5, 8))`` names both versions and what is needed.
    """
    python = tuple(python if python is not None else sys.version_info)[:3]
    slicerOld = slicerVersion is not None and tuple(slicerVersion)[:2] < MINIMUM_SLICER
    if tuple(python[:2]) >= MINIMUM_PYTHON and not slicerOld:
        return ""
    running = ".".join(str(part) for part in python)
    slicerText = f"3D Slicer {'.'.join(str(p) for p in slicerVersion[:2])}" if slicerVersion else "this 3D Slicer"
    need = ".".join(str(p) for p in MINIMUM_SLICER)
    return (
        f"GASA Segmenter needs 3D Slicer {need} or newer (Python {'.'.join(str(p) for p in MINIMUM_PYTHON)}); "
        f"{slicerText} runs Python {running}. Install 3D Slicer {need} or newer, then install the extension again."
    )
