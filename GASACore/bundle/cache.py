"""Zipped bundles are unpacked once, into ``$GASA_HOME/cache/bundles/<sha256 of the zip>/``, and reused.

The key is the zip's SHA-256, so a changed zip gets a new folder and an unchanged one (even renamed or
moved) is never unpacked twice. A folder is unpacked into a temporary sibling and renamed into place
only when complete (``GASACore.io.atomic_output``), so two processes unpacking the same zip at once
cannot corrupt it: the second rename fails and that process uses the first one's folder. Nothing is
written to the system temporary folder.

Before anything is extracted every member is checked: no absolute paths, no ``..``, no backslashes, no
links, at most ``max_members`` members and ``max_bytes`` unpacked in total (zip bombs are refused from
the sizes the archive declares, which ``zipfile`` enforces while reading).
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from GASACore.bundle.integrity import sha256_of
from GASACore.errors import ModelError
from GASACore.home import cache_dir
from GASACore.io.atomic import atomic_output

__all__ = ["ZipLimits", "bundle_cache_dir", "check_zip_members", "unpack_bundle_zip"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZipLimits:
    """The most a zipped bundle may unpack to.

    Attributes:
        max_members: entries (files and folders); a bundle has model.json and one file per fold.
        max_bytes: total unpacked size in bytes (16 GiB: five folds of a large network, with room).
    """

    max_members: int = 10_000
    max_bytes: int = 16 << 30


def bundle_cache_dir() -> Path:
    """``$GASA_HOME/cache/bundles`` (not created)."""
    return cache_dir("bundles")


def _size(count: int) -> str:
    """``"16.00 GiB (17,179,869,184 bytes)"``; MiB below 1 GiB."""
    unit, scale = ("GiB", 1 << 30) if count >= 1 << 30 else ("MiB", 1 << 20)
    return f"{count / scale:.2f} {unit} ({count:,} bytes)"


def check_zip_members(bundle_zip: zipfile.ZipFile, archive: Path, limits: ZipLimits = ZipLimits()) -> None:
    """Refuse unsafe members and archives that unpack to more than ``limits``, before extracting anything.

    Raises:
        ModelError: naming the unsafe member, or the member count / unpacked size and the limit.
    """
    members = bundle_zip.infolist()
    if len(members) > limits.max_members:
        raise ModelError(
            f"refusing to unpack {archive}: it holds {len(members):,} members, more than the limit of "
            f"{limits.max_members:,} for a model bundle"
        )
    total = sum(member.file_size for member in members)
    if total > limits.max_bytes:
        raise ModelError(
            f"refusing to unpack {archive}: it would unpack to {_size(total)}, more than the limit of "
            f"{_size(limits.max_bytes)} for a model bundle"
        )
    for member in members:
        name = PurePosixPath(member.filename)
        is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
        if name.is_absolute() or ".." in name.parts or "\\" in member.filename or is_link:
            raise ModelError(f"refusing to unpack {archive}: unsafe member path {member.filename!r}")


def _model_folder(folder: Path) -> Path | None:
    """The folder holding model.json: ``folder`` itself or one of its sub-folders."""
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if (candidate / "model.json").is_file():
            return candidate
    return None


def _unpack(archive: Path, target: Path, limits: ZipLimits) -> None:
    with zipfile.ZipFile(archive) as bundle_zip:
        check_zip_members(bundle_zip, archive, limits)
        try:
            with atomic_output(target, overwrite=False, is_dir=True) as temporary:
                bundle_zip.extractall(temporary)
                if _model_folder(temporary) is None:
                    raise ModelError(f"{archive} holds no model.json at its top level or in a single folder")
        except FileExistsError:
            logger.info("another process unpacked %s into %s meanwhile; using its copy", archive.name, target)
            return
    logger.info("unpacked %s into %s", archive.name, target)


def unpack_bundle_zip(archive: str | Path, *, cache_root: Path | None = None, limits: ZipLimits = ZipLimits()) -> Path:
    """The bundle folder of a zipped bundle, unpacked into the cache on first use.

    Args:
        archive: a ``.zip`` holding ``model.json`` at its top level or inside one folder.
        cache_root: where the unpacked folders live; ``$GASA_HOME/cache/bundles`` when ``None``.
        limits: the largest archive accepted.

    Returns:
        The cached folder that holds ``model.json``.

    Raises:
        ModelError: not a zip file, an unsafe member, too many members or bytes, no model.json, or a cache
            folder that cannot be written.
    """
    archive = Path(archive)
    if not zipfile.is_zipfile(archive):
        raise ModelError(f"expected a model bundle folder, a .zip of one, or an nnU-Net results folder; got {archive}")
    target = (cache_root or bundle_cache_dir()) / sha256_of(archive)
    if target.is_dir():
        found = _model_folder(target)
        if found is not None:
            logger.info("using %s, unpacked earlier from %s", target, archive.name)
            return found
        logger.warning("cached folder %s holds no model.json (changed by hand?); unpacking %s again", target, archive)
        shutil.rmtree(target)
    try:
        _unpack(archive, target, limits)
    except OSError as err:
        raise ModelError(
            f"cannot unpack {archive} into the model cache {target.parent}: {err}; set GASA_HOME to a writable folder"
        ) from err
    found = _model_folder(target)
    if found is None:  # only if another process left a broken folder there
        raise ModelError(f"{target}, unpacked from {archive}, holds no model.json")
    return found
