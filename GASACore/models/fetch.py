"""Fetching and importing catalogue models: download (or take a file brought by hand), check, install.

Two processes fetching the same model at once take turns through a lock file
(:func:`GASACore.models.lock.file_lock`): the second waits, then finds the model installed and uses it.
Torch-free.
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path, PurePosixPath

from GASACore.errors import ModelError
from GASACore.models.catalog import Catalog
from GASACore.models.download import (
    CancelSignal,
    ChecksumError,
    DownloadError,
    DownloadPolicy,
    ProgressCallback,
    download,
)
from GASACore.models.entry import CatalogEntry, ModelFormat
from GASACore.models.install import (
    InstalledModel,
    install_archive,
    install_folder,
    lock_path,
    part_path,
    read_install,
    remove_install,
    verify_install,
)
from GASACore.models.lock import file_lock

__all__ = ["fetch_entry", "fetch_model", "import_model", "installed_for", "needed_entries"]

logger = logging.getLogger(__name__)


def _cancel_callable(cancel: CancelSignal | None):
    if cancel is None:
        return None
    is_set = getattr(cancel, "is_set", None)
    return is_set if callable(is_set) else cancel


def installed_for(entry: CatalogEntry) -> InstalledModel | None:
    """The install of ``entry`` when there is one that came from the archive the catalogue names.

    Raises:
        ModelError: an install exists but from another archive than the one the entry pins (the catalogue
            changed): it must be removed and fetched again.
    """
    installed = read_install(entry.id, entry.version)
    if installed is None or entry.sha256 is None or installed.archive_sha256 in (None, entry.sha256):
        return installed
    raise ModelError(
        f"the installed {entry.spec} came from an archive with SHA-256 checksum {installed.archive_sha256}, the "
        f"catalogue now pins {entry.sha256}; run `gasa-models remove {entry.id}` and fetch it again"
    )


def fetch_model(
    entry: CatalogEntry,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelSignal | None = None,
    policy: DownloadPolicy | None = None,
    lock_timeout: float = 3600.0,
) -> InstalledModel:
    """Download, check and install one remote entry (or return its existing, verified install).

    Raises:
        DownloadError, ChecksumError: see :func:`GASACore.models.download.download`.
        ModelError: a bundled or composite entry, an unsafe or malformed archive, a changed install.
        Cancelled: ``cancel`` was set (a partial download is kept for resuming).
    """
    if entry.bundled or entry.format is ModelFormat.COMPOSITE:
        raise ModelError(f"{entry.spec} is {'bundled' if entry.bundled else 'composite'}: there is nothing to download")
    installed = installed_for(entry)
    if installed is not None:
        verify_install(installed)
        return installed
    if entry.import_only:
        licence = entry.license.summary() if entry.license else "not stated"
        raise DownloadError(
            f"{entry.spec} has no download URL in the catalogue: download its archive from "
            f"{entry.homepage or 'its publisher'} (licence: {licence}) and run "
            f"`gasa-models import ARCHIVE --id {entry.id}`"
        )
    lock = lock_path(entry.id, entry.version)
    what = f"installing {entry.spec}"
    with file_lock(lock, what=what, timeout=lock_timeout, cancel=_cancel_callable(cancel)) as refresh:
        installed = installed_for(entry)  # another process may have installed it while this one waited
        if installed is not None:
            logger.info("%s was installed by another process meanwhile", entry.spec)
            verify_install(installed)
            return installed

        def report(event) -> None:
            refresh()
            if progress is not None:
                progress(event)

        part = part_path(entry.id, entry.version)
        digest = download(
            entry.urls, part, size=entry.size, sha256=entry.sha256, model=entry.spec, policy=policy,
            progress=report, cancel=cancel,
        )  # fmt: skip
        if entry.sha256 is None:
            logger.warning("%s is unpinned: recording the SHA-256 of this first download, %s", entry.spec, digest)
        try:
            installed = _install_checked(entry, part, digest, source=entry.urls[0])
        finally:
            part.unlink(missing_ok=True)  # checked and unpacked, or refused: never kept
    return installed


def _install_checked(entry: CatalogEntry, archive: Path, digest: str, *, source: str) -> InstalledModel:
    return install_archive(
        archive,
        model_id=entry.id,
        version=entry.version,
        model_format=entry.format,
        archive_sha256=digest,
        pinned=entry.sha256 is not None,
        source=source,
        folder=entry.folder,
    )


def needed_entries(catalog: Catalog, entry: CatalogEntry) -> list[CatalogEntry]:
    """The entries that must be installed to run ``entry``: a composite's parts, a crop pre-pass's model first."""
    if entry.format is ModelFormat.COMPOSITE:
        return [needed for part in catalog.parts_of(entry) for needed in needed_entries(catalog, part)]
    crop_model = (entry.recipe.crop or {}).get("model")
    before = needed_entries(catalog, catalog.get(str(crop_model))) if crop_model else []
    return [*before, entry]


def fetch_entry(catalog: Catalog, entry: CatalogEntry, **kwargs) -> list[InstalledModel]:
    """Fetch an entry and what it needs (:func:`needed_entries`); keyword arguments as :func:`fetch_model`."""
    return [fetch_model(needed, **kwargs) for needed in needed_entries(catalog, entry)]


def _archive_entry(catalog: Catalog, archive: Path, digest: str) -> CatalogEntry | None:
    """The catalogue entry of an archive brought by hand: same SHA-256, else same file name as a URL."""
    by_hash = [e for e in catalog if e.sha256 == digest]
    if by_hash:
        return by_hash[0]
    by_name = [e for e in catalog if any(PurePosixPath(url).name == archive.name for url in e.urls)]
    return by_name[0] if len(by_name) == 1 else None


def _check_archive(entry: CatalogEntry, archive: Path, digest: str) -> None:
    size = archive.stat().st_size
    if entry.size is not None and size != entry.size:
        raise ChecksumError(
            f"refusing {archive} as {entry.spec}: it has {size:,} bytes, the catalogue says {entry.size:,}"
        )
    if entry.sha256 is not None and digest != entry.sha256:
        raise ChecksumError(
            f"refusing {archive} as {entry.spec}: its SHA-256 checksum is {digest}, the catalogue expects "
            f"{entry.sha256}"
        )


def _local_format(source: Path) -> ModelFormat:
    if source.is_dir():
        names = {p.name for p in source.rglob("*") if p.name in ("model.json", "plans.json")}
    else:
        with zipfile.ZipFile(source) as zipped:
            names = {PurePosixPath(n).name for n in zipped.namelist()}
    if "model.json" in names:
        return ModelFormat.BUNDLE
    if "plans.json" in names:
        return ModelFormat.NNUNET
    raise ModelError(f"{source} holds neither a model.json (bundle) nor a plans.json (nnU-Net v2 results folder)")


def import_model(
    source: str | Path,
    catalog: Catalog,
    *,
    model_id: str | None = None,
    version: str | None = None,
    fallback_id: str | None = None,
) -> InstalledModel:
    """Install an archive or folder brought by hand (no network), verified like a download.

    A ``.zip`` is matched to its catalogue entry by ``model_id``, else by SHA-256 or file name, and checked
    against the entry's size and SHA-256 (an unpinned entry records the archive's). A folder is checked
    for its layout. Something the catalogue does not know needs ``model_id``, or is installed under
    ``fallback_id`` when given (the 3D Slicer module passes one made from the file name); either way as
    ``0.0.0`` unless ``version`` says otherwise.

    Raises:
        ModelError: no such file, not a zip or model folder, no id for an unknown model, the install
            exists; ``ChecksumError`` when the archive is not the one the catalogue names.
    """
    from GASACore.models.entry import Version

    path = Path(source).expanduser().absolute()
    if not path.exists():
        raise ModelError(f"nothing to import at {path}: expected a .zip archive or a model folder")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise ModelError(f"cannot import {path}: expected a .zip archive or a model folder")
    digest = _sha256(path) if path.is_file() else None
    entry = catalog.get(model_id, version) if model_id and model_id in catalog else None
    if entry is None and model_id is None and digest is not None:
        entry = _archive_entry(catalog, path, digest)
    if entry is not None and entry.bundled:
        raise ModelError(f"{entry.spec} is bundled with GASASegmenter; it needs no import")
    if entry is None and model_id is None:
        if fallback_id is None:
            raise ModelError(f"the catalogue knows no archive like {path.name}; name it with --id ID")
        model_id = fallback_id
    if entry is None:
        model_id = _slug(model_id or "")
        version = str(Version.parse(version or "0.0.0"))
    with file_lock(lock_path(entry.id if entry else model_id, entry.version if entry else version), what="installing"):
        if entry is not None and path.is_file():
            _check_archive(entry, path, digest or "")
            return _install_checked(entry, path, digest or "", source=str(path))
        model_format = entry.format if entry is not None else _local_format(path)
        folder = None  # a folder brought by hand is found by its files (the entry's folder names the archive's)
        spec_id, spec_version = (entry.id, entry.version) if entry else (model_id, version)
        if path.is_file():
            return install_archive(
                path, model_id=spec_id, version=spec_version, model_format=model_format, archive_sha256=digest or "",
                pinned=False, source=str(path),
            )  # fmt: skip
        return install_folder(path, model_id=spec_id, version=spec_version, model_format=model_format, folder=folder)


def _sha256(path: Path) -> str:
    from GASACore.bundle.integrity import sha256_of

    return sha256_of(path)


def _slug(model_id: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", model_id):
        raise ModelError(f"--id must be lower-case letters, digits, '.', '_' and '-', got {model_id!r}")
    return model_id


def remove_model(model_id: str, version: str | None = None) -> list[str]:
    """Remove every installed version of ``model_id`` (or only ``version``); returns the specs removed."""
    from GASACore.models.install import installed_models, models_root

    versions = [version] if version else [m.version for m in installed_models() if m.id == model_id]
    if version is None:  # interrupted downloads of versions never installed
        folder = models_root() / model_id
        parts = folder.glob(".*.zip.part") if folder.is_dir() else ()
        versions += [p.name[1 : -len(".zip.part")] for p in parts if p.name[1 : -len(".zip.part")] not in versions]
    removed = []
    for each in versions:
        with file_lock(lock_path(model_id, each), what=f"removing {model_id}@{each}"):
            if remove_install(model_id, each):
                removed.append(f"{model_id}@{each}")
    return removed
