"""File integrity: SHA-256 digests (the one helper; torch-free, also used by the Slicer module)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from GASACore.errors import BundleIntegrityError

__all__ = ["sha256_of", "verify_sha256"]

_CHUNK = 1 << 20


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 (lower case, 64 characters) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ``BundleIntegrityError`` unless ``path`` exists and hashes to ``expected``."""
    if not path.is_file():
        raise BundleIntegrityError(f"model file {path} listed in model.json is missing")
    actual = sha256_of(path)
    if actual != expected.lower():
        raise BundleIntegrityError(
            f"model file {path.name} is corrupt or was modified: model.json records SHA-256 {expected}, "
            f"the file has {actual}; refusing to load it"
        )
