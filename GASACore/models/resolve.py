"""``resolve_model``: a model named by a path or a catalogue id becomes a path the engine loads.

The one place where ``gasa-segment -m``, :func:`GASACore.segment`, ``--describe-model`` and the 3D Slicer
module turn what the user named into a model folder: an existing path is used as it is; ``ID`` or
``ID@VERSION`` is looked up in the catalogue, a bundled entry is checked (SHA-256 of its ``model.json``), a
remote one is used from its verified install or, unless ``offline``, downloaded first. Torch-free.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from GASACore.bundle.integrity import sha256_of
from GASACore.bundle.model import ModelBundle
from GASACore.bundle.store import load_model
from GASACore.errors import BundleIntegrityError, ModelError
from GASACore.models.catalog import Catalog, load_catalog
from GASACore.models.download import CancelSignal, DownloadPolicy, ProgressCallback
from GASACore.models.entry import CatalogEntry, ModelFormat, parse_spec
from GASACore.models.fetch import fetch_model, installed_for, needed_entries
from GASACore.models.install import InstalledModel, verify_install

__all__ = [
    "ModelStatus",
    "OfflineError",
    "bundled_model_path",
    "list_models",
    "load_model_spec",
    "lookup",
    "resolve_model",
    "with_catalog_labels",
]

logger = logging.getLogger(__name__)


class OfflineError(ModelError):
    """The model is not installed and ``--offline`` forbids downloading it."""


def bundled_model_path(entry: CatalogEntry) -> Path:
    """A bundled entry's folder, once its ``model.json`` has the catalogue's SHA-256.

    Raises:
        ModelError: the folder is missing (``BundleIntegrityError`` when ``model.json`` changed).
    """
    if entry.path is None:
        raise ModelError(f"{entry.spec} is not bundled")
    model_json = entry.path / "model.json"
    if not model_json.is_file():
        raise ModelError(f"bundled model {entry.spec} is missing: expected {model_json}; reinstall GASASegmenter")
    if entry.path_sha256:
        actual = sha256_of(model_json)
        if actual != entry.path_sha256:
            raise BundleIntegrityError(
                f"bundled model {entry.spec} was changed: {model_json} has SHA-256 checksum {actual}, the catalogue "
                f"records {entry.path_sha256}"
            )
    return entry.path


def lookup(spec: str, catalog: Catalog | None = None) -> CatalogEntry | None:
    """The catalogue entry ``spec`` names (``ID`` or ``ID@VERSION``), ``None`` when it is no catalogue id."""
    try:
        parse_spec(spec)
    except ValueError:
        return None
    catalog = catalog if catalog is not None else load_catalog()
    return catalog.get(spec) if spec in catalog else None


def _offline_message(entry: CatalogEntry) -> str:
    return (
        f"model {entry.spec} is not installed and --offline forbids downloading it; run `gasa-models fetch "
        f"{entry.id}` on a machine with internet, or `gasa-models import ARCHIVE`"
    )


def resolve_model(
    spec: str | Path,
    *,
    offline: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelSignal | None = None,
    catalog: Catalog | None = None,
    runnable: bool = True,
    policy: DownloadPolicy | None = None,
) -> Path:
    """The model folder (or file) that ``spec`` names, downloading a catalogue model on first use.

    Args:
        spec: a path (bundle folder or ``.zip``, nnU-Net v2 results folder) or a catalogue ``ID[@VERSION]``.
            An existing path wins over an id of the same name.
        offline: never open a network connection; a model that is not installed is an :class:`OfflineError`.
        progress: receives :class:`~GASACore.events.DownloadEvent` s while downloading.
        cancel: a ``threading.Event`` or callable that stops a download.
        catalog: the catalogue (default: :func:`load_catalog`).
        runnable: refuse entries the engine cannot run (an unimplemented recipe) before
            anything is downloaded; ``False`` (descriptions) resolves them anyway.
        policy: download timeouts and retries.

    Returns:
        The path to load with :func:`GASACore.bundle.load_model` (verified: every installed file's SHA-256).

    Raises:
        ModelError: neither an existing path nor a catalogue id (the message lists the ids), an entry
            that cannot run yet, a changed install; OfflineError; the download's errors.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return path
    entry = lookup(str(spec), catalog)
    if entry is None:
        known = ", ".join((catalog if catalog is not None else load_catalog()).ids())
        raise ModelError(f"model not found: {spec} is neither an existing path nor a catalogue id (known ids: {known})")
    reason = entry.unsupported_reason()
    if runnable and reason is not None:
        raise ModelError(f"cannot run {entry.spec}: {reason}")
    if entry.bundled:
        return bundled_model_path(entry)
    if entry.format is ModelFormat.COMPOSITE:
        raise ModelError(
            f"{entry.spec} is composite: it has no folder of its own; resolve its parts "
            f"({', '.join(map(str, entry.parts))}) or load it with load_model_spec"
        )
    installed = installed_for(entry)
    if installed is None:
        if offline:
            raise OfflineError(_offline_message(entry))
        installed = fetch_model(entry, progress=progress, cancel=cancel, policy=policy)
    else:
        verify_install(installed)
    return installed.model_path


def with_catalog_labels(model: ModelBundle, entry: CatalogEntry | None) -> ModelBundle:
    """``model`` with its catalogue entry's label names, colours and SNOMED CT terminology.

    A publisher's class names (``kidney_right``) become ours (``right kidney``, terminology from
    :data:`GASACore.labels.LABEL_SETS`). Only values the model paints are renamed; a model label the
    entry does not list keeps the model's own name. ``entry`` ``None`` or without labels: ``model`` as it is.
    """
    if entry is None or not entry.labels:
        return model
    ours = {label.value: label.to_label() for label in entry.labels}
    unknown = sorted(set(ours) - {label.value for label in model.labels})
    if unknown:
        logger.warning("catalogue entry %s lists label values %s that the model does not paint", entry.spec, unknown)
    labels = tuple(ours.get(label.value, label) for label in model.labels)
    return dataclasses.replace(model, labels=labels)


def load_model_spec(
    spec: str | Path,
    *,
    folds: Sequence[str | int] | None = None,
    offline: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelSignal | None = None,
) -> ModelBundle:
    """:func:`resolve_model` then :func:`GASACore.bundle.load_model` (weights verified), with the catalogue's
    label names and terminology when ``spec`` is a catalogue id: what ``gasa-segment -m`` and
    :func:`GASACore.segment` load. An entry with a publisher's recipe (TotalSegmentator's) or parts (a composite)
    comes with its :class:`~GASACore.recipe.RunRecipe` (:func:`GASACore.models.recipes.load_entry_model`).
    Imports torch only to read an nnU-Net checkpoint's mirror axes.
    """
    from GASACore.models.recipes import load_entry_model, needs_recipe

    if not Path(spec).expanduser().exists():
        catalog = load_catalog()
        entry = lookup(str(spec), catalog)
        if entry is not None and needs_recipe(entry):
            reason = entry.unsupported_reason()
            if reason is not None:
                raise ModelError(f"cannot run {entry.spec}: {reason}")
            return load_entry_model(entry, catalog, folds=folds, offline=offline, progress=progress, cancel=cancel)
    path = resolve_model(spec, offline=offline, progress=progress, cancel=cancel)
    entry = None if Path(spec).expanduser().exists() else lookup(str(spec))
    return with_catalog_labels(load_model(path, folds=folds), entry)


@dataclass(frozen=True)
class ModelStatus:
    """A catalogue entry and its state on this machine (what ``gasa-models list`` and the model selector show).

    Attributes:
        entry: the catalogue entry.
        installed: its install, ``None`` when not installed (bundled entries: ``None``).
        available: usable without a download (bundled, or installed).
    """

    entry: CatalogEntry
    installed: InstalledModel | None
    missing: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        """Runnable without a download: bundled, or installed with every model it needs (a composite's parts, a
        crop pre-pass model; ``missing`` lists those that are not)."""
        if self.missing:
            return False
        return self.entry.bundled or self.installed is not None or self.entry.format is ModelFormat.COMPOSITE

    @property
    def state(self) -> str:
        """``bundled``, ``installed``, ``not installed``, ``import only`` (no download URL) or ``composite``."""
        if self.entry.bundled:
            return "bundled"
        if self.entry.format is ModelFormat.COMPOSITE:
            return "composite"
        if self.installed is None and self.entry.import_only:
            return "import only"
        return "installed" if self.installed is not None else "not installed"

    def summary(self) -> str:
        """One line for a model selector, e.g. ``"download - 233 MB - Apache-2.0 (unpinned)"``."""
        licence = self.entry.license.summary() if self.entry.license else "licence not stated"
        if self.available:
            head = self.state
        elif self.entry.import_only:
            head = f"manual download ({self.entry.homepage or 'see its publisher'}), then gasa-models import"
        elif self.entry.format is ModelFormat.COMPOSITE:
            head = f"download parts {', '.join(self.missing)}"
        elif self.installed is not None:
            head = f"download {', '.join(self.missing)} (needed to run it)"
        else:
            head = f"download - {round((self.entry.size or 0) / 1e6):,} MB"
        pin = "" if self.entry.pinned else " (unpinned)"
        reason = self.entry.unsupported_reason()
        return f"{head} - {licence}{pin}" + (f" - {reason}" if reason else "")

    def to_json(self) -> dict[str, Any]:
        return {
            **self.entry.to_json(),
            "state": self.state,
            "available": self.available,
            "installed": self.installed.to_json() if self.installed else None,
            "missing": list(self.missing),
            "summary": self.summary(),
        }


def _installed_or_none(entry: CatalogEntry) -> InstalledModel | None:
    try:
        return None if entry.bundled or entry.format is ModelFormat.COMPOSITE else installed_for(entry)
    except ModelError as err:
        logger.warning("%s", err)
        return None


def list_models(catalog: Catalog | None = None) -> list[ModelStatus]:
    """Every catalogue entry with its install state (no network; installs are not re-hashed here)."""
    catalog = catalog if catalog is not None else load_catalog()
    statuses = []
    for entry in catalog:
        installed = _installed_or_none(entry)
        try:
            needed = [n for n in needed_entries(catalog, entry) if n.spec != entry.spec and not n.bundled]
        except ModelError as err:  # a part or crop model the catalogue lacks
            logger.warning("%s", err)
            needed = []
        missing = tuple(n.spec for n in needed if _installed_or_none(n) is None)
        statuses.append(ModelStatus(entry, installed, missing))
    return statuses
