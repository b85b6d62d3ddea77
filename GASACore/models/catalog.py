"""The model catalogue: ``Resources/models/catalog.json`` merged with the files named by ``GASA_CATALOG``.

``GASA_CATALOG`` holds one path or several joined by ``os.pathsep`` (``:`` on Linux and macOS, ``;`` on
Windows): a hospital lists the models it mirrors on its own server, with the same schema. Files are read in
order; an entry of a later file replaces every earlier entry with the same id (all its versions). Every
file is checked against ``Resources/models/catalog.schema.json`` (:mod:`GASACore.models.schema`); a broken
file is an error that names it. Torch-free.

The bundled catalogue is found next to the ``GASACore`` package: ``GASACore/../Resources/models/`` holds it
in the source tree and in the installed 3D Slicer extension alike.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from GASACore.bundle.jsonfile import read_json_file
from GASACore.errors import ModelError
from GASACore.models.entry import CatalogEntry, ModelFormat, Version, parse_spec
from GASACore.models.schema import validate

__all__ = [
    "CATALOG_ENV",
    "Catalog",
    "CatalogError",
    "catalog_files",
    "default_catalog_path",
    "load_catalog",
    "read_catalog_file",
    "schema_path",
]

logger = logging.getLogger(__name__)

#: Environment variable naming extra catalogue files (joined by ``os.pathsep``).
CATALOG_ENV = "GASA_CATALOG"


class CatalogError(ModelError):
    """A catalogue file is unreadable or malformed, or names no such model."""


def _resources() -> Path:
    return Path(__file__).resolve().parents[2] / "Resources" / "models"


def default_catalog_path() -> Path:
    """The bundled ``Resources/models/catalog.json`` (next to the GASACore package)."""
    return _resources() / "catalog.json"


def schema_path() -> Path:
    """``Resources/models/catalog.schema.json``: the schema of every catalogue file."""
    return _resources() / "catalog.schema.json"


def catalog_files(environ: dict[str, str] | None = None) -> list[Path]:
    """The bundled catalogue, then the files of ``GASA_CATALOG`` in order (empty parts skipped)."""
    value = (os.environ if environ is None else environ).get(CATALOG_ENV, "")
    extra = [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]
    return [default_catalog_path(), *extra]


def _read_schema() -> dict[str, Any]:
    try:
        return json.loads(schema_path().read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CatalogError(f"cannot read the catalogue schema {schema_path()}: {err}") from err


def read_catalog_file(path: Path, schema: dict[str, Any] | None = None) -> list[CatalogEntry]:
    """The entries of one catalogue file, checked against the schema.

    Raises:
        CatalogError: the file is missing, not JSON, does not fit the schema, or lists one id@version twice;
            the message names the file.
    """
    path = Path(path)
    try:
        data = read_json_file(path, error=CatalogError, what="model catalogue")
    except FileNotFoundError as err:
        raise CatalogError(f"model catalogue {path} does not exist (named by {CATALOG_ENV} or bundled)") from err
    except OSError as err:
        raise CatalogError(f"cannot read the model catalogue {path}: expected JSON ({err})") from err
    problems = validate(data, schema if schema is not None else _read_schema())
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise CatalogError(f"model catalogue {path} does not fit its schema: {shown}")
    entries = []
    for index, item in enumerate(data["models"]):
        try:
            entries.append(CatalogEntry.from_json(item, path.resolve()))
        except (KeyError, TypeError, ValueError) as err:
            where = f"model catalogue {path}: entry {index} ({item.get('id')!r})"
            raise CatalogError(f"{where} is malformed: {err}") from err
    specs = [entry.spec for entry in entries]
    twice = sorted({spec for spec in specs if specs.count(spec) > 1})
    if twice:
        raise CatalogError(f"model catalogue {path} lists {', '.join(twice)} more than once")
    return entries


@dataclass(frozen=True)
class Catalog:
    """The merged catalogue: entries in file order, every version of every id.

    Attributes:
        entries: every entry (several versions of an id may be listed).
        files: the catalogue files read, in order.
    """

    entries: tuple[CatalogEntry, ...]
    files: tuple[Path, ...] = ()

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def ids(self) -> list[str]:
        """Every id, in catalogue order, once."""
        return list(dict.fromkeys(entry.id for entry in self.entries))

    def versions(self, model_id: str) -> list[CatalogEntry]:
        """The entries of ``model_id``, newest version first."""
        found = [entry for entry in self.entries if entry.id == model_id]
        return sorted(found, key=lambda entry: Version.parse(entry.version), reverse=True)

    def __contains__(self, spec: object) -> bool:
        if not isinstance(spec, str):
            return False
        try:
            self.get(spec)
        except (CatalogError, ValueError):
            return False
        return True

    def get(self, spec: str, version: str | None = None) -> CatalogEntry:
        """The entry ``ID`` (newest version), ``ID@VERSION``, or ``spec`` with ``version``.

        Raises:
            CatalogError: no such id or version (the message lists the known ids or versions).
            ValueError: ``spec`` is not of the form ``ID[@VERSION]``.
        """
        model_id, given = parse_spec(spec)
        wanted = version or given
        found = self.versions(model_id)
        if not found:
            known = ", ".join(self.ids()) or "none"
            files = ", ".join(map(str, self.files))
            raise CatalogError(f"no model {model_id!r} in the catalogue ({files}); known ids: {known}")
        if wanted is None:
            return found[0]
        for entry in found:
            if Version.parse(entry.version) == Version.parse(wanted):
                return entry
        raise CatalogError(
            f"the catalogue has no version {wanted} of {model_id!r}; it has {', '.join(e.version for e in found)}"
        )

    def parts_of(self, entry: CatalogEntry) -> list[CatalogEntry]:
        """The entries a composite entry runs, in order (``[]`` for other entries).

        Raises:
            CatalogError: a part the catalogue does not have.
        """
        return [self.get(part.id, part.version) for part in entry.parts]


def _check_parts(catalog: Catalog) -> None:
    for entry in catalog:
        if entry.format is ModelFormat.COMPOSITE:
            if not entry.parts:
                raise CatalogError(f"composite model {entry.spec} ({entry.source}) lists no parts")
            parts = catalog.parts_of(entry)
            nested = [part.spec for part in parts if part.format is ModelFormat.COMPOSITE]
            if nested:
                raise CatalogError(f"composite model {entry.spec} has composite parts {nested}; parts must be models")
        elif entry.urls and entry.size is None and entry.sha256 is None:
            raise CatalogError(
                f"model {entry.spec} in {entry.source} has a url but neither size nor sha256: a download could not be "
                "checked"
            )


def load_catalog(files: Sequence[str | Path] | None = None) -> Catalog:
    """Read and merge catalogue files: the bundled one and ``GASA_CATALOG``'s when ``files`` is ``None``.

    Args:
        files: catalogue files in order (later ones override earlier entries with the same id).

    Raises:
        CatalogError: a file that is missing or broken (named), or a composite naming an unknown part.
    """
    paths = [Path(p) for p in files] if files is not None else catalog_files()
    schema = _read_schema()
    merged: list[CatalogEntry] = []
    for path in paths:
        entries = read_catalog_file(path, schema)
        overridden = {entry.id for entry in entries}
        replaced = sorted({entry.id for entry in merged} & overridden)
        if replaced:
            logger.info("catalogue %s overrides %s", path, ", ".join(replaced))
        merged = [entry for entry in merged if entry.id not in overridden] + entries
    catalog = Catalog(tuple(merged), tuple(paths))
    _check_parts(catalog)
    return catalog
