"""Where GASASegmenter keeps its own files: ``$GASA_HOME`` (default ``~/.gasasegmenter``).

Torch-free and cheap to import. Layout under the home folder::

    cache/bundles/<sha256>/   zipped bundles, unpacked once (GASACore.bundle.cache)
    models/<id>/<version>/    installed catalogue models (the model catalogue)

Examples:
    >>> import os
    >>> os.environ["GASA_HOME"] = "/data/gasa"
    >>> str(gasa_home())
    '/data/gasa'
    >>> str(cache_dir("bundles"))
    '/data/gasa/cache/bundles'
    >>> del os.environ["GASA_HOME"]
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_HOME", "GASA_HOME_ENV", "cache_dir", "gasa_home"]

#: Environment variable that moves the home folder.
GASA_HOME_ENV = "GASA_HOME"
#: The home folder when ``GASA_HOME`` is unset or empty.
DEFAULT_HOME = "~/.gasasegmenter"


def gasa_home() -> Path:
    """The home folder: ``$GASA_HOME`` when set and not empty, else ``~/.gasasegmenter`` (``~`` expanded).

    The folder is not created here; the code that writes into it does that.
    """
    value = os.environ.get(GASA_HOME_ENV, "").strip()
    return Path(value or DEFAULT_HOME).expanduser()


def cache_dir(*parts: str) -> Path:
    """A folder under ``$GASA_HOME/cache`` (not created), e.g. ``cache_dir("bundles")``.

    Raises:
        ValueError: a part is empty, absolute or climbs out of the cache with ``..``.
    """
    for part in parts:
        if not part or Path(part).is_absolute() or ".." in Path(part).parts:
            raise ValueError(f"cache folder names must be relative names inside the cache, got {part!r}")
    return gasa_home().joinpath("cache", *parts)
