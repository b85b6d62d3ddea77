"""The model catalogue (``Resources/models/catalog.json``) and the models a user imported.

A catalogue entry names a bundle folder relative to the catalogue and the SHA-256 of its ``model.json``;
the bundle's ``model.json`` in turn holds the SHA-256 of every weight file, which the engine checks before
loading. What a model is (its labels, colours and terminology) comes from the engine's torch-free
description (``GASACore.bundle.describe.describe_model``, also ``gasa-segment --describe-model``), never
from reading its files here. Imported models (bundle folders, zipped bundles, nnU-Net v2 results folders)
are described first and remembered in the application settings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from GASACore.bundle.integrity import sha256_of
from GASACore.labels import Label, labels_from_json
from GASACore.models.schema import validate as validateAgainstSchema  # the one catalogue validator

__all__ = [
    "IMPORTED_MODELS_KEY",
    "CatalogError",
    "ModelEntry",
    "defaultCatalogPath",
    "describeModel",
    "forgetImportedModel",
    "importModel",
    "importedModels",
    "labelsFromDescription",
    "loadCatalog",
    "modelLabels",
    "rememberImportedModel",
    "resolveModelPath",
    "validateAgainstSchema",
]

logger = logging.getLogger(__name__)

#: Settings key holding the JSON list of imported model paths.
IMPORTED_MODELS_KEY = "GASASegmenter/ImportedModels"


class CatalogError(ValueError):
    """The catalogue or a model named by it is missing, malformed or changed."""


@dataclass(frozen=True)
class ModelEntry:
    """A model the user can pick.

    Attributes:
        id: short identifier (catalogue id, or ``imported:<path>``).
        title: what the model selector shows.
        path: bundle folder, zip or nnU-Net results folder.
        sha256: expected SHA-256 of ``model.json`` (catalogue models), ``""`` when not checked here.
        description: one paragraph for the tooltip.
    """

    id: str
    title: str
    path: Path
    sha256: str = ""
    description: str = ""


def defaultCatalogPath() -> Path:
    """``Resources/models/catalog.json`` of the source tree, or of the installed extension."""
    here = Path(__file__).resolve().parent
    for root in (here.parents[1], here.parents[1] / "GASASegmenter"):
        candidate = root / "Resources" / "models" / "catalog.json"
        if candidate.is_file():
            return candidate
    return here.parent / "Resources" / "models" / "catalog.json"


def loadCatalog(path: Path | None = None) -> list[ModelEntry]:
    """Read and validate the catalogue (against ``catalog.schema.json`` next to it); its bundled entries.

    Raises:
        CatalogError: unreadable JSON, or a catalogue that does not fit the schema.
    """
    catalogPath = Path(path) if path is not None else defaultCatalogPath()
    try:
        data = json.loads(catalogPath.read_text(encoding="utf-8"))
        schema = json.loads(catalogPath.with_name("catalog.schema.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CatalogError(f"cannot read the model catalogue {catalogPath}: {err}") from err
    problems = validateAgainstSchema(data, schema)
    if problems:
        raise CatalogError(f"model catalogue {catalogPath} does not fit its schema: " + "; ".join(problems))
    return [
        ModelEntry(
            id=item["id"],
            title=item["title"],
            path=(catalogPath.parent / item["path"]).resolve(),
            sha256=item.get("sha256", ""),
            description=item.get("description", ""),
        )
        for item in data["models"]
        if "path" in item  # bundled entries; remote ones are GASACore.models.list_models()'s
    ]


def resolveModelPath(entry: ModelEntry) -> Path:
    """The model's path once it is present and its ``model.json`` has the catalogue's SHA-256.

    Raises:
        CatalogError: the model is not installed or its ``model.json`` changed.
    """
    if not entry.path.exists():
        raise CatalogError(
            f"model {entry.title!r} is not installed: expected it at {entry.path}; reinstall the extension "
            "or import the model with 'Import model...'"
        )
    if entry.sha256:
        modelJson = entry.path / "model.json"
        got = sha256_of(modelJson) if modelJson.is_file() else "(no model.json)"
        if got != entry.sha256:
            raise CatalogError(
                f"model {entry.title!r} was changed: {modelJson} must have SHA-256 {entry.sha256}, got {got}"
            )
    return entry.path


def describeModel(path: str | Path) -> dict[str, Any]:
    """The engine's description of the model at ``path``, read in this process without torch.

    Raises:
        GASACore.errors.ModelError: no model at ``path``, or a malformed one.
    """
    from GASACore.bundle.describe import describe_model

    return describe_model(path)


def labelsFromDescription(description: Mapping[str, Any]) -> tuple[Label, ...]:
    """The foreground labels (names, colours, terminology) of a model description.

    Raises:
        CatalogError: the description holds no valid label list.
    """
    try:
        return labels_from_json(description["labels"])
    except (KeyError, TypeError, ValueError) as err:
        raise CatalogError(f"the model description must list labels with value, name and colour: {err}") from err


def modelLabels(path: str | Path) -> tuple[Label, ...]:
    """The foreground labels of the model at ``path`` (:func:`describeModel`, torch-free)."""
    return labelsFromDescription(describeModel(path))


def importedModels(settings: Mapping[str, Any]) -> list[ModelEntry]:
    """Models imported earlier (from ``settings[IMPORTED_MODELS_KEY]``) that still exist."""
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
            entries.append(ModelEntry(id=f"imported:{path}", title=f"{path.name} (imported)", path=path))
        else:
            logger.warning("imported model %s no longer exists; skipping it", path)
    return entries


def rememberImportedModel(path: str | Path, settings: MutableMapping[str, Any]) -> ModelEntry:
    """Add a model (already described by the engine) to the imported models in ``settings``; once only."""
    location = Path(path).expanduser().resolve()
    known = [str(entry.path) for entry in importedModels(settings)]
    if str(location) not in known:
        known.append(str(location))
    settings[IMPORTED_MODELS_KEY] = json.dumps(known)
    return ModelEntry(id=f"imported:{location}", title=f"{location.name} (imported)", path=location)


def importModel(path: str | Path, settings: MutableMapping[str, Any]) -> ModelEntry:
    """Describe a model (scripts; the panel asks ``gasa-segment --describe-model`` in the background), remember it.

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
    """Remove a model from the imported list (its files are left alone)."""
    remaining = [str(e.path) for e in importedModels(settings) if e.path != Path(path).expanduser().resolve()]
    settings[IMPORTED_MODELS_KEY] = json.dumps(remaining)
