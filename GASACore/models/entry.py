"""One catalogue entry as typed, frozen records (torch-free).

An entry is either *bundled* (``path``: a bundle folder shipped next to the catalogue, checked through the
SHA-256 of its ``model.json``) or *remote* (``url``: an archive downloaded, checked against ``size`` and
``sha256`` and installed under ``$GASA_HOME/models/ID/VERSION``). ``format`` says what the archive holds:
a GASASegmenter bundle, an nnU-Net v2 results folder, or (``composite``) nothing itself but ``parts``,
other entries run in order and merged, a later part overwriting an earlier one.

Examples:
    >>> Version.parse("2.0.0") < Version.parse("2.10.0"), str(Version.parse("1.2.3-rc.1"))
    (True, '1.2.3-rc.1')
    >>> parse_spec("totalseg-organs@2.0.0"), parse_spec("gasa-demo-btcv")
    (('totalseg-organs', '2.0.0'), ('gasa-demo-btcv', None))
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from GASACore.enums import StrEnum
from GASACore.labels import LABEL_SETS, Label, Terminology

__all__ = [
    "IMPLEMENTED_RECIPES",
    "CatalogEntry",
    "CatalogLabel",
    "License",
    "ModelFormat",
    "PartRef",
    "Recipe",
    "TimeEstimate",
    "Version",
    "parse_spec",
]

#: Recipes the engine runs today; an entry with another one is refused before it runs (or downloads).
IMPLEMENTED_RECIPES = frozenset({"nnunet", "totalsegmentator"})

_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")


class ModelFormat(StrEnum):
    """What a remote entry's archive holds."""

    BUNDLE = "bundle"  #: a GASASegmenter bundle (model.json + weights)
    NNUNET = "nnunet"  #: an nnU-Net v2 results folder (plans.json, dataset.json, fold_*/checkpoint_*.pth)
    COMPOSITE = "composite"  #: no archive: other entries (``parts``) run in order and merged


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version; orders as semver does (a pre-release sorts before its release)."""

    major: int
    minor: int
    patch: int
    pre: str = ""
    build: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> Version:
        """``"MAJOR.MINOR.PATCH[-PRE][+BUILD]"`` -> :class:`Version`.

        Raises:
            ValueError: not a semantic version.
        """
        match = _SEMVER.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"a model version must be a semantic version such as 1.0.0, got {text!r}")
        major, minor, patch, pre, build = match.groups()
        return cls(int(major), int(minor), int(patch), pre or "", build or "")

    def sort_key(self) -> tuple[int, int, int, int, str]:
        """Key ordering releases after their pre-releases."""
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, self.pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.sort_key() < other.sort_key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        return text + (f"-{self.pre}" if self.pre else "") + (f"+{self.build}" if self.build else "")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"ID"`` or ``"ID@VERSION"`` -> ``(id, version or None)``.

    Raises:
        ValueError: the id is not a catalogue id (lower-case letters, digits, ``.``, ``_``, ``-``) or the
            version is not a semantic version.
    """
    model_id, _, version = spec.strip().partition("@")
    if not _ID.fullmatch(model_id):
        raise ValueError(f"a catalogue id is lower-case letters, digits, '.', '_' and '-', got {model_id!r}")
    if version:
        Version.parse(version)
    return model_id, version or None


@dataclass(frozen=True)
class License:
    """A model's licence; ``commercial_use`` is ``False`` for research-only models, ``None`` when unknown."""

    name: str
    commercial_use: bool | None = None
    url: str | None = None
    note: str | None = None

    @classmethod
    def from_json(cls, data: str | Mapping[str, Any] | None) -> License | None:
        if data is None:
            return None
        if isinstance(data, str):
            return cls(data)
        return cls(str(data["name"]), data.get("commercial_use"), data.get("url"), data.get("note"))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "commercial_use": self.commercial_use, "url": self.url, "note": self.note}

    def summary(self) -> str:
        """``"Apache-2.0"``, ``"CC-BY-NC-SA-4.0 (research only)"`` or ``"... (commercial use: unknown)"``."""
        if self.commercial_use is False:
            return f"{self.name} (research only)"
        return self.name if self.commercial_use else f"{self.name} (commercial use: unknown)"


@dataclass(frozen=True)
class Recipe:
    """The publisher's pre-processing and inference where it differs from plain nnU-Net.

    ``name`` ``nnunet`` is GASACore's engine as it is; ``totalsegmentator`` is TotalSegmentator's own recipe
    (canonical orientation, resampling with ``resample_order``, ``step_size``, no mirroring, optional
    ``crop`` pre-pass). Fields left out are ``None``: the engine's default.
    """

    name: str = "nnunet"
    step_size: float | None = None
    mirroring: bool | None = None
    canonical_orientation: bool | None = None
    resample_order: int | None = None
    intensity_dtype: str | None = None
    split_large_volumes: bool | None = None
    crop: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Recipe:
        return cls(**dict(data)) if data else cls()

    def to_json(self) -> dict[str, Any]:
        values = {
            "name": self.name,
            "step_size": self.step_size,
            "mirroring": self.mirroring,
            "canonical_orientation": self.canonical_orientation,
            "resample_order": self.resample_order,
            "intensity_dtype": self.intensity_dtype,
            "split_large_volumes": self.split_large_volumes,
            "crop": dict(self.crop) if self.crop is not None else None,
        }
        return {key: value for key, value in values.items() if value is not None}

    @property
    def implemented(self) -> bool:
        """Whether the engine runs this recipe today."""
        return self.name in IMPLEMENTED_RECIPES


@dataclass(frozen=True)
class TimeEstimate:
    """Rough run times in seconds on a reference case and machine (``reference`` says which)."""

    cpu_seconds: float | None = None
    gpu_seconds: float | None = None
    reference: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TimeEstimate | None:
        return cls(data.get("cpu_seconds"), data.get("gpu_seconds"), data.get("reference")) if data else None

    def to_json(self) -> dict[str, Any]:
        return {"cpu_seconds": self.cpu_seconds, "gpu_seconds": self.gpu_seconds, "reference": self.reference}


@dataclass(frozen=True)
class CatalogLabel:
    """One class a model paints, named our way and mapped to our label tables.

    Attributes:
        value: the value in the model's label map.
        name: our display name.
        source_name: the publisher's class name (``kidney_right``), ``None`` when the same.
        maps_to: ``(label_set, value)`` of the same structure in :data:`GASACore.labels.LABEL_SETS`.
        terminology: SNOMED CT codes; taken from ``maps_to`` when the entry gives none.
    """

    value: int
    name: str
    source_name: str | None = None
    maps_to: tuple[str, int] | None = None
    terminology: Terminology | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CatalogLabel:
        maps_to = data.get("maps_to")
        target = (str(maps_to["label_set"]), int(maps_to["value"])) if maps_to else None
        terminology = Terminology.from_json(data["terminology"]) if data.get("terminology") else None
        if terminology is None and target is not None:
            terminology = _table_label(target).terminology
        return cls(int(data["value"]), str(data["name"]), data.get("source_name"), target, terminology)

    def to_label(self) -> Label:
        """The :class:`~GASACore.labels.Label` (colour from the mapped table label, else grey)."""
        color = _table_label(self.maps_to).color if self.maps_to else (128, 174, 128)
        return Label(self.value, self.name, color, self.terminology)

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "name": self.name,
            "source_name": self.source_name,
            "maps_to": {"label_set": self.maps_to[0], "value": self.maps_to[1]} if self.maps_to else None,
            "terminology": self.terminology.to_json() if self.terminology else None,
        }


def _table_label(target: tuple[str, int]) -> Label:
    label_set, value = target
    for label in LABEL_SETS.get(label_set, ()):
        if label.value == value:
            return label
    raise ValueError(f"maps_to must name a label of {sorted(LABEL_SETS)}, got {label_set!r} value {value}")


@dataclass(frozen=True)
class PartRef:
    """A part of a composite entry: another entry's id and, optionally, its version (else the latest)."""

    id: str
    version: str | None = None

    def __str__(self) -> str:
        return self.id if self.version is None else f"{self.id}@{self.version}"


@dataclass(frozen=True)
class CatalogEntry:
    """One model of the catalogue.

    Attributes:
        id: catalogue id (``totalseg-organs``); with ``version`` it names an install folder.
        version: semantic version (text).
        title: what a model selector shows.
        description: one paragraph.
        format: :class:`ModelFormat` (``bundle`` for bundled entries).
        path: bundled entries: the bundle folder (absolute); ``None`` for remote entries.
        path_sha256: bundled entries: SHA-256 of the bundle's ``model.json`` (``""`` while being built).
        urls: remote entries: the archive's mirrors, tried in order.
        size: archive size in bytes (``None`` for bundled and composite entries).
        sha256: archive SHA-256; ``None`` when the publisher gives none (unpinned).
        folder: the model folder inside the archive, relative; ``None``: found by its files.
        folds: folds the entry runs (nnU-Net fold names), ``()`` for every fold.
        label_set: ``btcv`` / ``amos`` / ``kits23`` / ``custom`` when the entry says.
        labels: the classes, named our way with SNOMED CT codes; ``()`` when the model's own are used.
        license: the licence (``None`` when the entry gives none).
        citation: what to cite.
        homepage: where the publisher describes the model.
        device: recommended device (``cpu``, ``cuda`` or ``any``).
        time_estimate: rough CPU / GPU times.
        recipe: the publisher's pre-processing (:class:`Recipe`; ``nnunet`` = plain).
        parts: composite entries: the parts, in run order.
        modality: ``CT``.
        source: the catalogue file that defined the entry.
    """

    id: str
    version: str
    title: str
    description: str = ""
    format: ModelFormat = ModelFormat.BUNDLE
    path: Path | None = None
    path_sha256: str = ""
    urls: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    folder: str | None = None
    folds: tuple[str, ...] = ()
    label_set: str | None = None
    labels: tuple[CatalogLabel, ...] = ()
    license: License | None = None
    citation: str | None = None
    homepage: str | None = None
    device: str | None = None
    time_estimate: TimeEstimate | None = None
    recipe: Recipe = Recipe()
    parts: tuple[PartRef, ...] = ()
    modality: str = "CT"
    source: Path | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Path) -> CatalogEntry:
        """An entry from its catalogue JSON (already schema-checked); ``path`` is relative to ``source``'s folder.

        Raises:
            ValueError: a version that is not semver, or a ``maps_to`` naming no label of our tables.
        """
        urls = data.get("url") or ()
        common = {
            "id": str(data["id"]),
            "version": str(Version.parse(str(data["version"]))),
            "title": str(data["title"]),
            "description": str(data.get("description", "")),
            "label_set": data.get("labelSet"),
            "license": License.from_json(data.get("license")),
            "citation": data.get("citation"),
            "homepage": data.get("homepage"),
            "device": data.get("device"),
            "time_estimate": TimeEstimate.from_json(data.get("time_estimate")),
            "modality": str(data.get("modality", "CT")),
            "source": source,
        }
        if "path" in data:
            folder = (source.parent / str(data["path"])).resolve()
            return cls(**common, path=folder, path_sha256=str(data.get("sha256", "")))
        return cls(
            **common,
            format=ModelFormat(data["format"]),
            urls=(urls,) if isinstance(urls, str) else tuple(urls),
            size=data.get("size"),
            sha256=data.get("sha256"),
            folder=data.get("folder"),
            folds=tuple(str(f) for f in data.get("folds", ())),
            labels=tuple(CatalogLabel.from_json(item) for item in data.get("labels", ())),
            recipe=Recipe.from_json(data.get("recipe")),
            parts=tuple(PartRef(str(p["id"]), p.get("version")) for p in data.get("parts", ())),
        )

    @property
    def spec(self) -> str:
        """``ID@VERSION``."""
        return f"{self.id}@{self.version}"

    @property
    def bundled(self) -> bool:
        """Shipped with GASASegmenter (no download)."""
        return self.path is not None

    @property
    def import_only(self) -> bool:
        """A remote model without a download URL: the user downloads it from ``homepage`` and imports it."""
        return not self.bundled and self.format is not ModelFormat.COMPOSITE and not self.urls

    @property
    def pinned(self) -> bool:
        """Whether the archive's SHA-256 is known before the first download (bundled entries: always)."""
        return self.bundled or self.format is ModelFormat.COMPOSITE or self.sha256 is not None

    def unsupported_reason(self) -> str | None:
        """Why the engine cannot run this entry, or ``None`` when it can (every recipe in
        :data:`IMPLEMENTED_RECIPES`; composites run their parts, see :mod:`GASACore.models.recipes`)."""
        if not self.recipe.implemented:
            return f"recipe {self.recipe.name!r} is not implemented yet"
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (what ``gasa-models list --json`` and model descriptions carry)."""
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "format": self.format.value,
            "bundled": self.bundled,
            "path": str(self.path) if self.path is not None else None,
            "url": list(self.urls),
            "size": self.size,
            "sha256": self.sha256 if not self.bundled else self.path_sha256 or None,
            "pinned": self.pinned,
            "folder": self.folder,
            "folds": list(self.folds),
            "label_set": self.label_set,
            "labels": [label.to_json() for label in self.labels],
            "license": self.license.to_json() if self.license else None,
            "citation": self.citation,
            "homepage": self.homepage,
            "device": self.device,
            "time_estimate": self.time_estimate.to_json() if self.time_estimate else None,
            "recipe": self.recipe.to_json(),
            "parts": [str(part) for part in self.parts],
            "modality": self.modality,
            "unsupported": self.unsupported_reason(),
            "catalog_file": str(self.source) if self.source else None,
        }
