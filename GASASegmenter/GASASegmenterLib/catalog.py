"""The models the panel offers: GASACore's catalogue with its install states, and the models a user imported.

The catalogue and its rules are GASACore's (:func:`GASACore.models.list_models`: ``Resources/models/catalog.json``
merged with the files of ``GASA_CATALOG``, each entry with its state on this machine and its one-line summary
such as ``"download - 234 MB - Apache-2.0 (unpinned)"``); this module only turns them into what a model
selector shows (:func:`modelTitle`, :func:`licenceQuestion`) and keeps what is Slicer's own: the model folders
a user imported by hand, remembered in the application settings (``IMPORTED_MODELS_KEY``). Models installed
from an archive (``gasa-models import``) live under ``$GASA_HOME/models`` and are listed from there.

What a model paints (labels, colours, terminology) is the engine's description (``gasa-segment
--describe-model``), never read from its files here. Nothing here opens a socket or hashes a file.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from GASACore.labels import Label, labels_from_json
from GASACore.models import CatalogError, License, ModelStatus, Version, installed_models, list_models, lookup

__all__ = [
    "IMPORTED_MODELS_KEY",
    "CatalogError",
    "ModelEntry",
    "availabilityText",
    "catalogModels",
    "describeModel",
    "findModel",
    "forgetImportedModel",
    "importIdFor",
    "importModel",
    "importedModels",
    "labelsFromDescription",
    "licenceAcceptText",
    "licenceQuestion",
    "listModels",
    "modelLabels",
    "modelTitle",
    "needsLicenceAcceptance",
    "rememberImportedModel",
    "whyNotRunnable",
]

logger = logging.getLogger(__name__)

#: Settings key holding the JSON list of imported model folders.
IMPORTED_MODELS_KEY = "GASASegmenter/ImportedModels"
#: ``ModelEntry.state`` of a model folder the user imported by hand (the others are GASACore's states).
IMPORTED = "imported"
#: ``ModelEntry.state`` of a catalogue entry that a download installs (GASACore's ``ModelStatus.state``).
NOT_INSTALLED = "not installed"


@dataclass(frozen=True)
class ModelEntry:
    """A model the user can pick.

    Attributes:
        key: what identifies it across sessions: the catalogue's ``ID@VERSION`` (also for installs the
            catalogue does not know), or ``imported:<folder>``.
        name: its plain title.
        model: what ``gasa-segment -m`` and ``--describe-model`` are given: the catalogue's ``ID@VERSION`` (the
            engine resolves it, checks it and applies the catalogue's labels), or a folder.
        state: GASACore's state (``bundled``, ``installed``, ``not installed``, ``import only``,
            ``composite``), or ``imported``.
        available: usable without a download.
        summary: GASACore's one line (``download - 234 MB - Apache-2.0 (unpinned)``); ``""`` for imports.
        id: the catalogue id (``""`` for a folder imported by hand).
        path: where the model is on disk; ``None`` while it is not installed.
        description: one paragraph for the tooltip.
        license: the licence the catalogue gives (``None``: not stated).
        size: the archive's bytes (``None`` when not downloadable or unknown).
        pinned: whether the archive's SHA-256 is known before the first download.
        unsupported: why the engine cannot run it yet (``None`` when it can).
        homepage, urls, citation: where the publisher describes it, its download mirrors, what to cite.
    """

    key: str
    name: str
    model: str
    state: str
    available: bool
    summary: str = ""
    id: str = ""
    path: Path | None = None
    description: str = ""
    license: License | None = None
    size: int | None = None
    pinned: bool = True
    unsupported: str | None = None
    homepage: str | None = None
    urls: tuple[str, ...] = ()
    citation: str | None = None

    @property
    def title(self) -> str:
        """What the model selector shows (:func:`modelTitle`)."""
        return modelTitle(self)

    @property
    def downloadable(self) -> bool:
        """A catalogue entry that ``gasa-models fetch`` installs (not installed yet, with a download URL)."""
        return self.state == NOT_INSTALLED


def _fromStatus(status: ModelStatus) -> ModelEntry:
    entry = status.entry
    path = entry.path if entry.bundled else (status.installed.model_path if status.installed else None)
    return ModelEntry(
        key=entry.spec,
        name=entry.title,
        model=entry.spec,
        state=status.state,
        available=status.available,
        summary=status.summary(),
        id=entry.id,
        path=path,
        description=entry.description,
        license=entry.license,
        size=entry.size,
        pinned=entry.pinned,
        unsupported=entry.unsupported_reason(),
        homepage=entry.homepage,
        urls=entry.urls,
        citation=entry.citation,
    )


def catalogModels() -> list[ModelEntry]:
    """Every catalogue entry with its state (:func:`GASACore.models.list_models`), then the installs the
    catalogue does not know (archives imported under an id of their own).

    Raises:
        CatalogError: a catalogue file (the bundled one or one of ``GASA_CATALOG``) is unreadable or malformed.
    """
    statuses = list_models()
    entries = [_fromStatus(status) for status in statuses]
    known = {status.entry.spec for status in statuses}
    for installed in installed_models():
        if installed.spec not in known:
            entries.append(
                ModelEntry(
                    key=installed.spec,
                    name=f"{installed.id} {installed.version}",
                    model=str(installed.model_path),
                    state=IMPORTED,
                    available=True,
                    id=installed.id,
                    path=installed.model_path,
                    description=f"imported from {installed.source}",
                )
            )
    return entries


def listModels(settings: Mapping[str, Any]) -> list[ModelEntry]:
    """:func:`catalogModels`, then the model folders imported by hand (:func:`importedModels`).

    Raises:
        CatalogError: as :func:`catalogModels` (call :func:`importedModels` alone to list the rest).
    """
    return [*catalogModels(), *importedModels(settings)]


def modelTitle(entry: ModelEntry) -> str:
    """The selector's text: the title of a model that is here, with what a download means for one that is not.

    Examples (titles of ``Resources/models/catalog.json``)::

        GASA-UNet demo: 13 abdominal organs (BTCV)                                    bundled or installed
        TotalSegmentator v2 organs (24 classes, 1.5 mm) (download - 234 MB - Apache-2.0 (unpinned))
        KiTS23 2nd place: ... (manual download (https://...), then gasa-models import - ... (research only) ...)
        my-folder (imported)
    """
    if entry.state == IMPORTED:
        return f"{entry.name} (imported)"
    if entry.available:
        return entry.name
    return f"{entry.name} ({entry.summary})"


def findModel(entries: Sequence[ModelEntry], key: str) -> ModelEntry | None:
    """The entry with ``key``; else the newest listed version of the same catalogue id (the catalogue moved on)."""
    for entry in entries:
        if entry.key == key:
            return entry
    modelId = key.partition("@")[0] if not key.startswith("imported:") else ""
    sameId = [entry for entry in entries if modelId and entry.id == modelId and entry.state != IMPORTED]
    return max(sameId, key=lambda entry: Version.parse(entry.key.partition("@")[2]).sort_key(), default=None)


def whyNotRunnable(entry: ModelEntry, offline: bool = False) -> str | None:
    """Why Segment cannot run with ``entry`` now (one line for the user), ``None`` when it can.

    A model that is not here is fine unless ``offline``: the run downloads it first.
    """
    if entry.unsupported:
        return f"{entry.name} cannot run yet: {entry.unsupported}"
    if entry.available:
        return None
    if not entry.downloadable:
        return f"{entry.name} is not installed ({entry.summary}); add its archive with 'Import model...'"
    if offline:
        return (
            f"{entry.name} is not installed and Offline is ticked: untick it to download the model, or add its "
            "archive with 'Import model...'"
        )
    return None


def availabilityText(entry: ModelEntry) -> str:
    """The line under the selector for a model that is not here, or cannot run (``""`` otherwise).

    Example: ``"Not installed: download - 234 MB - Apache-2.0 (unpinned). Segment downloads it first ..."``.
    """
    if entry.unsupported:
        return f"Cannot run yet: {entry.unsupported}."
    if entry.available:
        return ""
    if entry.downloadable:
        return (
            f"Not installed: {entry.summary}. Segment downloads it first, or click Download; its licence is shown "
            "before anything is downloaded."
        )
    if not entry.urls and entry.homepage:
        licence = entry.license.summary() if entry.license else "licence not stated"
        return (
            f"Not installed, and it has no download address: download its archive from {entry.homepage} "
            f"({licence}) and add it with 'Import model...'."
        )
    return f"Not installed: {entry.summary}."


def needsLicenceAcceptance(entry: ModelEntry) -> bool:
    """Whether a download must be accepted explicitly: the licence forbids commercial use, or does not say."""
    return entry.license is None or entry.license.commercial_use is not True


def licenceAcceptText(entry: ModelEntry) -> str:
    """The label of the button that starts the download in the licence confirmation."""
    return "Accept the licence and download" if needsLicenceAcceptance(entry) else "Download"


def licenceQuestion(entry: ModelEntry) -> str:
    """What the user reads before the first download of ``entry``: size, source, licence, checksum, citation.

    Example (a research-only entry)::

        Download "KiTS23 model" (233 MB) from example.org?

        Licence: CC-BY-NC-SA-4.0 (research only). research use only. https://...
        This licence does not allow commercial use: you may use the model for research only.
        ...
    """
    size = f" ({round(entry.size / 1e6):,} MB)" if entry.size else ""
    source = f" from {urlsplit(entry.urls[0]).netloc or entry.urls[0]}" if entry.urls else ""
    lines = [f'Download "{entry.name}"{size}{source}?', ""]
    licence = entry.license
    if licence is None:
        lines.append("Licence: not stated in the catalogue. Ask the model's publisher before you use it.")
    else:
        lines.append(" ".join(part for part in (f"Licence: {licence.summary()}.", licence.note, licence.url) if part))
        if licence.commercial_use is False:
            lines.append("This licence does not allow commercial use: you may use the model for research only.")
        elif licence.commercial_use is None:
            lines.append("The catalogue does not say whether commercial use is allowed: read the licence first.")
    if not entry.pinned:
        lines.append(
            "The publisher gives no checksum: the SHA-256 of this first download is recorded and checked at every "
            "later use (unpinned)."
        )
    else:
        lines.append("The download is checked (size and SHA-256) before it is installed.")
    if entry.unsupported:
        lines.append(f"Note: the engine cannot run this model yet ({entry.unsupported}).")
    if entry.citation:
        lines.append(f"Please cite: {entry.citation}")
    return "\n".join(lines)


def importIdFor(path: str | Path) -> str:
    """A catalogue-style id made from an archive's file name, for an archive the catalogue does not know.

    Examples::

        >>> importIdFor("/data/My Liver Model v2.zip"), importIdFor("__.zip")
        ('my-liver-model-v2', 'imported-model')
    """
    name = Path(path).name
    stem = name[: -len(".zip")] if name.lower().endswith(".zip") else name
    slug = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")
    return slug or "imported-model"


def describeModel(model: str | Path) -> dict[str, Any]:
    """The engine's description of a model folder or catalogue ``ID[@VERSION]``, read in this process without
    torch (scripts; the panel asks ``gasa-segment --describe-model`` in the background). Never downloads.

    Raises:
        GASACore.errors.ModelError: no model at that path and no such catalogue id, or a malformed model.
    """
    from GASACore.bundle.describe import describe_model
    from GASACore.models import describe_catalog_model

    if not Path(model).expanduser().exists() and lookup(str(model)) is not None:
        return describe_catalog_model(str(model))
    return describe_model(model)


def labelsFromDescription(description: Mapping[str, Any]) -> tuple[Label, ...]:
    """The foreground labels (names, colours, terminology) of a model description.

    Raises:
        CatalogError: the description holds no valid label list.
    """
    try:
        return labels_from_json(description["labels"])
    except (KeyError, TypeError, ValueError) as err:
        raise CatalogError(f"the model description must list labels with value, name and colour: {err}") from err


def modelLabels(model: str | Path) -> tuple[Label, ...]:
    """The foreground labels of a model folder or catalogue id (:func:`describeModel`, torch-free)."""
    return labelsFromDescription(describeModel(model))


def _importedEntry(location: Path) -> ModelEntry:
    return ModelEntry(
        key=f"imported:{location}",
        name=location.name,
        model=str(location),
        state=IMPORTED,
        available=True,
        path=location,
        description=str(location),
    )


def importedModels(settings: Mapping[str, Any]) -> list[ModelEntry]:
    """Model folders imported earlier (from ``settings[IMPORTED_MODELS_KEY]``) that still exist."""
    raw = settings.get(IMPORTED_MODELS_KEY) or "[]"
    try:
        paths = json.loads(raw) if isinstance(raw, str) else list(raw)
    except ValueError:
        logger.warning("ignoring unreadable setting %s=%r", IMPORTED_MODELS_KEY, raw)
        return []
    entries = []
    for item in paths:
        path = Path(item)
        if path.exists():
            entries.append(_importedEntry(path))
        else:
            logger.warning("imported model %s no longer exists; skipping it", path)
    return entries


def rememberImportedModel(path: str | Path, settings: MutableMapping[str, Any]) -> ModelEntry:
    """Add a model folder (already described by the engine) to the imported models in ``settings``; once only."""
    location = Path(path).expanduser().resolve()
    known = [str(entry.path) for entry in importedModels(settings)]
    if str(location) not in known:
        known.append(str(location))
    settings[IMPORTED_MODELS_KEY] = json.dumps(known)
    return _importedEntry(location)


def importModel(path: str | Path, settings: MutableMapping[str, Any]) -> ModelEntry:
    """Describe a model folder (scripts; the panel asks the engine in the background) and remember it.

    Its weight files' SHA-256 are checked by the engine before every run.

    Raises:
        GASACore.errors.ModelError: not a model, or a malformed one.
    """
    location = Path(path).expanduser().resolve()
    description = describeModel(location)
    entry = rememberImportedModel(location, settings)
    logger.info("imported model %s (%d labels) from %s", description["name"], len(description["labels"]), location)
    return entry


def forgetImportedModel(path: str | Path, settings: MutableMapping[str, Any]) -> None:
    """Remove a model folder from the imported list (its files are left alone)."""
    remaining = [str(e.path) for e in importedModels(settings) if e.path != Path(path).expanduser().resolve()]
    settings[IMPORTED_MODELS_KEY] = json.dumps(remaining)
