"""Installed catalogue models under ``$GASA_HOME/models/ID/VERSION``: install, verify, list, remove.

An install folder holds the unpacked archive and ``gasa-install.json``, the record of what was installed:
the archive's size and SHA-256 (for an unpinned entry, the first complete download's, which is checked from
then on), the model folder inside it, and the SHA-256 of every file, re-checked on every use
(:func:`verify_install`). A folder appears complete or not at all: archives are unpacked into a temporary
sibling, checked (member paths, links, size and count limits of ``GASACore.bundle.cache``; the layout of a
bundle or nnU-Net results folder) and renamed into place. Torch-free.

Layout::

    $GASA_HOME/models/<id>/<version>/            the install (``gasa-install.json`` + the archive's files)
    $GASA_HOME/models/<id>/.<version>.zip.part   a download in progress or interrupted (resumable)
    $GASA_HOME/models/<id>/.<version>.lock       held while a process downloads or installs
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from GASACore.bundle.cache import ZipLimits, check_zip_members
from GASACore.bundle.nnunet_folder import CHECKPOINTS
from GASACore.errors import BundleIntegrityError, ModelError
from GASACore.home import gasa_home
from GASACore.io.atomic import atomic_output, temporary_sibling
from GASACore.models.entry import ModelFormat, parse_spec

__all__ = [
    "RECORD_NAME",
    "InstalledModel",
    "find_model_folder",
    "install_archive",
    "install_dir",
    "install_folder",
    "installed_models",
    "lock_path",
    "models_root",
    "part_path",
    "read_install",
    "remove_install",
    "verify_install",
]

logger = logging.getLogger(__name__)

#: The install record inside every install folder.
RECORD_NAME = "gasa-install.json"
RECORD_VERSION = 1


def models_root() -> Path:
    """``$GASA_HOME/models`` (not created)."""
    return gasa_home() / "models"


def install_dir(model_id: str, version: str) -> Path:
    """``$GASA_HOME/models/ID/VERSION`` (``ID`` and ``VERSION`` checked, so no path can climb out)."""
    parse_spec(f"{model_id}@{version}")
    return models_root() / model_id / version


def part_path(model_id: str, version: str) -> Path:
    """The partial download of ``ID@VERSION``, in the install area (same file system as the install)."""
    return install_dir(model_id, version).with_name(f".{version}.zip.part")


def lock_path(model_id: str, version: str) -> Path:
    """The lock file held while ``ID@VERSION`` is downloaded or installed."""
    return install_dir(model_id, version).with_name(f".{version}.lock")


@dataclass(frozen=True)
class InstalledModel:
    """One install folder, as its record describes it.

    Attributes:
        id, version: the catalogue id and version.
        root: the install folder.
        model_path: the bundle folder or nnU-Net results folder inside it (what the engine loads).
        format: ``bundle`` or ``nnunet``.
        archive_sha256: SHA-256 of the archive it came from (``None`` for an imported folder).
        archive_size: its size in bytes.
        pinned: whether the catalogue gave the archive's SHA-256 (else it was recorded at the first download).
        source: the URL or file it came from.
        files: relative path -> SHA-256 of every installed file.
        installed_at: seconds since the epoch.
    """

    id: str
    version: str
    root: Path
    model_path: Path
    format: ModelFormat
    archive_sha256: str | None
    archive_size: int | None
    pinned: bool
    source: str
    files: Mapping[str, str]
    installed_at: float

    @property
    def spec(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def size(self) -> int:
        """Bytes the install takes on disk."""
        return sum((self.root / name).stat().st_size for name in self.files if (self.root / name).is_file())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "path": str(self.model_path),
            "root": str(self.root),
            "format": self.format.value,
            "archive_sha256": self.archive_sha256,
            "archive_size": self.archive_size,
            "pinned": self.pinned,
            "source": self.source,
            "installed_at": self.installed_at,
        }


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _is_layout(folder: Path, model_format: ModelFormat) -> bool:
    if model_format is ModelFormat.BUNDLE:
        return (folder / "model.json").is_file()
    return (
        (folder / "plans.json").is_file()
        and (folder / "dataset.json").is_file()
        and any((fold / name).is_file() for fold in folder.glob("fold_*") for name in CHECKPOINTS.values())
    )


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def find_model_folder(root: Path, model_format: ModelFormat, folder: str | None = None) -> Path:
    """The model folder inside an unpacked archive: ``folder`` when given, else the one folder (at most three
    levels down) with a bundle's ``model.json`` or an nnU-Net results folder's ``plans.json``,
    ``dataset.json`` and ``fold_*/checkpoint_final.pth`` (or ``checkpoint_best.pth``).

    Raises:
        ModelError: no such folder, or several (the entry must then name one with ``folder``).
    """
    what = (
        "model.json (a GASASegmenter bundle)"
        if model_format is ModelFormat.BUNDLE
        else "plans.json, dataset.json and fold_*/checkpoint_final.pth (an nnU-Net v2 results folder)"
    )
    if folder is not None:
        candidate = (root / folder).resolve()
        if root.resolve() not in (candidate, *candidate.parents) or not _is_layout(candidate, model_format):
            raise ModelError(f"the archive has no {what} in {folder!r}, the folder its catalogue entry names")
        return candidate
    found, level = [], [root]
    for _depth in range(4):
        found = [path for path in level if _is_layout(path, model_format)]
        if found:
            break
        level = [child for path in level for child in sorted(path.iterdir()) if _is_folder(child)]
    if len(found) != 1:
        where = "none" if not found else ", ".join(str(p.relative_to(root)) for p in found)
        raise ModelError(f"expected exactly one folder holding {what} in the archive; found {where}")
    return found[0]


def _write_record(staging: Path, record: dict[str, Any]) -> None:
    files = {}
    for path in sorted(staging.rglob("*")):
        if path.is_symlink():
            raise ModelError(f"refusing to install {record['id']}@{record['version']}: it holds a link, {path.name}")
        if path.is_file():
            files[path.relative_to(staging).as_posix()] = _file_sha256(path)
    record = {"record_version": RECORD_VERSION, **record, "files": files, "installed_at": time.time()}
    (staging / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _install(target: Path, fill, record: dict[str, Any], model_format: ModelFormat, folder: str | None) -> None:
    try:
        with atomic_output(target, overwrite=False, is_dir=True) as staging:
            fill(staging)
            model_path = find_model_folder(staging, model_format, folder)
            _write_record(staging, {**record, "model_path": model_path.relative_to(staging).as_posix() or "."})
    except FileExistsError as err:
        raise ModelError(f"{target} exists already; remove it with `gasa-models remove` first") from err


def install_archive(
    archive: Path,
    *,
    model_id: str,
    version: str,
    model_format: ModelFormat,
    archive_sha256: str,
    pinned: bool,
    source: str,
    folder: str | None = None,
    limits: ZipLimits | None = None,
) -> InstalledModel:
    """Unpack a checked archive into ``$GASA_HOME/models/ID/VERSION`` atomically.

    The archive's size and SHA-256 must have been checked by the caller; here its members are checked (no
    absolute paths, ``..``, links; member count and unpacked size limits) before anything is extracted, and
    the layout after.

    Raises:
        ModelError: not a zip file, an unsafe member, too large, no model folder of ``model_format``, or
            the install folder exists already. Nothing is left behind.
    """
    if model_format is ModelFormat.COMPOSITE:
        raise ModelError(f"{model_id}@{version} is composite: install its parts instead")
    if not zipfile.is_zipfile(archive):
        raise ModelError(f"refusing {model_id}@{version}: {archive.name} is not a zip archive")
    with zipfile.ZipFile(archive) as zipped:
        check_zip_members(zipped, archive, limits)
        record = {
            "id": model_id,
            "version": version,
            "format": model_format.value,
            "archive_sha256": archive_sha256,
            "archive_size": archive.stat().st_size,
            "pinned": pinned,
            "source": source,
        }
        _install(install_dir(model_id, version), zipped.extractall, record, model_format, folder)
    logger.info("installed %s@%s into %s", model_id, version, install_dir(model_id, version))
    return _read_back(model_id, version)


def _read_back(model_id: str, version: str) -> InstalledModel:
    installed = read_install(model_id, version)
    if installed is None:
        raise ModelError(f"the install of {model_id}@{version} vanished or is unreadable right after installing")
    return installed


def install_folder(
    source: Path, *, model_id: str, version: str, model_format: ModelFormat, folder: str | None = None
) -> InstalledModel:
    """Copy a model folder (a bundle or nnU-Net results folder a user brought) into the install area.

    Raises:
        ModelError: the folder has no model of ``model_format``, holds links, or the install exists.
    """
    find_model_folder(source, model_format, folder)  # refuse before copying anything
    record = {
        "id": model_id,
        "version": version,
        "format": model_format.value,
        "archive_sha256": None,
        "archive_size": None,
        "pinned": False,
        "source": str(source),
    }

    def fill(staging: Path) -> None:
        # under its own name: an nnU-Net folder's name (Trainer__Plans__configuration) says its configuration
        shutil.copytree(source, staging / source.name, symlinks=True)

    _install(install_dir(model_id, version), fill, record, model_format, folder)
    return _read_back(model_id, version)


def read_install(model_id: str, version: str) -> InstalledModel | None:
    """The install of ``ID@VERSION``, or ``None`` when there is none (or its record is unreadable)."""
    root = install_dir(model_id, version)
    try:
        record = json.loads((root / RECORD_NAME).read_text(encoding="utf-8"))
        return InstalledModel(
            id=record["id"],
            version=record["version"],
            root=root,
            model_path=(root / record["model_path"]).resolve(),
            format=ModelFormat(record["format"]),
            archive_sha256=record.get("archive_sha256"),
            archive_size=record.get("archive_size"),
            pinned=bool(record.get("pinned")),
            source=str(record.get("source", "")),
            files=dict(record["files"]),
            installed_at=float(record.get("installed_at", 0)),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("ignoring the install %s: its %s is unreadable (%s)", root, RECORD_NAME, err)
        return None


def installed_models() -> list[InstalledModel]:
    """Every install under ``$GASA_HOME/models``, sorted by id and version."""
    root = models_root()
    found = []
    for record in sorted(root.glob(f"*/*/{RECORD_NAME}")) if root.is_dir() else ():
        if record.parent.name.startswith(".") or record.parent.parent.name.startswith("."):
            continue
        try:
            installed = read_install(record.parent.parent.name, record.parent.name)
        except ValueError:  # not an id/version folder
            continue
        if installed is not None:
            found.append(installed)
    return found


def verify_install(installed: InstalledModel) -> None:
    """Re-hash every installed file against the install record.

    Raises:
        BundleIntegrityError: a file is missing or changed (names it and both checksums).
    """
    for name, expected in installed.files.items():
        path = installed.root / name
        if not path.is_file():
            raise BundleIntegrityError(
                f"installed model {installed.spec} is damaged: {name} is missing; run `gasa-models remove "
                f"{installed.id}` and fetch or import it again"
            )
        actual = _file_sha256(path)
        if actual != expected:
            kind = "pinned" if installed.pinned else "recorded at its first download (unpinned)"
            raise BundleIntegrityError(
                f"installed model {installed.spec} was modified: {name} has SHA-256 checksum {actual}, the install "
                f"recorded {expected} ({kind}); refusing to use it. Run `gasa-models remove {installed.id}` and "
                "fetch it again"
            )


def remove_install(model_id: str, version: str) -> bool:
    """Delete ``ID@VERSION``'s install folder and partial download; ``False`` when there was none."""
    root = install_dir(model_id, version)
    removed = False
    if root.exists():
        doomed = temporary_sibling(root)
        root.rename(doomed)  # the install vanishes at once; the files go after
        shutil.rmtree(doomed, ignore_errors=True)
        removed = True
    for leftover in (part_path(model_id, version), part_path(model_id, version).with_suffix(".part.json")):
        if leftover.exists():
            leftover.unlink()
            removed = True
    parent = root.parent
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
    return removed
