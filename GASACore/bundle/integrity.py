"""File integrity: SHA-256 digests and safe unpacking of zipped bundles."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from GASACore.errors import BundleIntegrityError, ModelError

__all__ = ["extract_bundle_zip", "sha256_of", "verify_sha256"]

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
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


def extract_bundle_zip(archive: Path, destination: Path | None = None) -> Path:
    """Unpack a zipped bundle after checking every member for path traversal.

    Args:
        archive: a ``.zip`` holding ``model.json`` at its top level or inside one folder.
        destination: folder to unpack into; a new temporary folder when ``None``.

    Returns:
        The folder that holds ``model.json``.

    Raises:
        ModelError: not a zip file, an unsafe member path (absolute, ``..``, links), or no model.json.
    """
    if not zipfile.is_zipfile(archive):
        raise ModelError(f"expected a model bundle folder, a .zip of one, or an nnU-Net results folder; got {archive}")
    target = Path(destination) if destination else Path(tempfile.mkdtemp(prefix="gasa-bundle-"))
    with zipfile.ZipFile(archive) as bundle_zip:
        for member in bundle_zip.infolist():
            name = PurePosixPath(member.filename)
            is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
            if name.is_absolute() or ".." in name.parts or "\\" in member.filename or is_link:
                if destination is None:
                    shutil.rmtree(target, ignore_errors=True)
                raise ModelError(f"refusing to unpack {archive}: unsafe member path {member.filename!r}")
        bundle_zip.extractall(target)
    candidates = [target, *(p for p in target.iterdir() if p.is_dir())]
    for candidate in candidates:
        if (candidate / "model.json").is_file():
            return candidate
    raise ModelError(f"{archive} holds no model.json at its top level or in a single folder")
