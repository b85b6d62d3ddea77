"""Zipped bundles are unpacked once, into ``$GASA_HOME/cache/bundles/<sha256 of the zip>/``, and reused.

The key is the zip's SHA-256, so a changed zip gets a new folder and an unchanged one (even renamed or
moved) is never unpacked twice. A folder is unpacked into a temporary sibling and renamed into place
only when complete (``GASACore.io.atomic_output``), so two processes unpacking the same zip at once
cannot corrupt it: the second rename fails and that process uses the first one's folder. Nothing is
written to the system temporary folder.

Before anything is extracted every member is checked: no absolute paths, no ``..``, no backslashes, no
links, at most ``max_members`` members, ``max_bytes`` unpacked in total and ``max_ratio`` expansion per member
(zip bombs are refused from the sizes the archive declares, which ``zipfile`` enforces while reading); see
``GASACore.bundle.zipcheck``.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path

from GASACore.bundle.integrity import sha256_of
from GASACore.bundle.zipcheck import ZipLimits, check_zip_members
from GASACore.errors import ModelError
from GASACore.home import cache_dir
from GASACore.io.atomic import atomic_output

__all__ = ["ZipLimits", "bundle_cache_dir", "check_zip_members", "unpack_bundle_zip"]

logger = logging.getLogger(__name__)


def bundle_cache_dir() -> Path:
    """``$GASA_HOME/cache/bundles`` (not created)."""
    return cache_dir("bundles")


def _model_folder(folder: Path) -> Path | None:
    """The folder holding model.json: ``folder`` itself or one of its sub-folders."""
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if (candidate / "model.json").is_file():
            return candidate
    return None


def _unpack(archive: Path, target: Path, limits: ZipLimits | None) -> None:
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


def unpack_bundle_zip(archive: str | Path, *, cache_root: Path | None = None, limits: ZipLimits | None = None) -> Path:
    """The bundle folder of a zipped bundle, unpacked into the cache on first use.

    Args:
        archive: a ``.zip`` holding ``model.json`` at its top level or inside one folder.
        cache_root: where the unpacked folders live; ``$GASA_HOME/cache/bundles`` when ``None``.
        limits: the largest archive accepted; :class:`ZipLimits` ``()`` (defaults, environment) when ``None``.

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
