"""What ``gasa-segment --describe-model ID`` prints for a catalogue id: the model's description with the
catalogue's labels, licence, recipe and install state, without torch and without the network."""

from __future__ import annotations

from typing import Any

from GASACore.bundle.describe import describe, describe_label
from GASACore.bundle.store import open_model
from GASACore.models.catalog import Catalog, load_catalog
from GASACore.models.fetch import installed_for
from GASACore.models.resolve import bundled_model_path, with_catalog_labels

__all__ = ["describe_catalog_model"]


def describe_catalog_model(spec: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """Describe the catalogue model ``spec`` (``ID`` or ``ID@VERSION``); never downloads.

    Returns:
        For a bundled or installed model: :func:`GASACore.bundle.describe.describe` of it with the catalogue's
        label names and terminology, plus ``path``, ``format``, ``installed: true`` and ``catalog`` (the
        entry: licence, size, pinned, recipe, time estimate, ``unsupported`` reason). For one not installed:
        ``installed: false``, ``catalog`` and the entry's ``labels``, ``name``, ``version``, ``license`` and
        ``citation`` (what a model selector shows before offering the download).

    Raises:
        ModelError: no such catalogue id; a bundled model that is missing or changed.
    """
    catalog = catalog if catalog is not None else load_catalog()
    entry = catalog.get(spec)
    summary = {"catalog": entry.to_json(), "license": entry.license.summary() if entry.license else None}
    path = bundled_model_path(entry) if entry.bundled else None
    installed = None if entry.bundled else installed_for(entry)
    if installed is not None:
        path = installed.model_path
    if path is None:
        labels = [describe_label(label.to_label()) for label in entry.labels]
        return {
            "name": entry.title,
            "version": entry.version,
            "description": entry.description,
            "installed": False,
            "labels": labels,
            "citation": entry.citation,
            **summary,
        }
    described = describe(with_catalog_labels(open_model(path, read_checkpoint=False), entry))
    model_format = "bundle-folder" if entry.bundled or entry.format.value == "bundle" else "nnunet-results-folder"
    return {
        "path": str(path),
        "format": model_format,
        **described,
        "installed": True,
        **summary,
        "license": described.get("license") or summary["license"],
    }
