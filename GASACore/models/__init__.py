"""The model catalogue: entries, verified downloads and installs under ``$GASA_HOME/models``. Torch-free.

* :func:`load_catalog` reads ``Resources/models/catalog.json`` merged with the files of ``GASA_CATALOG``.
* :func:`resolve_model` turns a path or a catalogue ``ID[@VERSION]`` into a model path, downloading on
  first use unless ``offline`` (what ``gasa-segment -m`` and :func:`GASACore.segment` call).
* :func:`list_models`, :func:`fetch_entry`, :func:`import_model`, :func:`verify_install`,
  :func:`remove_model`: what ``gasa-models`` and the 3D Slicer module's model selector do.
"""

from __future__ import annotations

from GASACore.models.catalog import (
    CATALOG_ENV,
    Catalog,
    CatalogError,
    catalog_files,
    default_catalog_path,
    load_catalog,
    read_catalog_file,
    schema_path,
)
from GASACore.models.describe import describe_catalog_model
from GASACore.models.download import ChecksumError, DownloadError, DownloadPolicy, download
from GASACore.models.entry import (
    IMPLEMENTED_RECIPES,
    CatalogEntry,
    CatalogLabel,
    License,
    ModelFormat,
    PartRef,
    Recipe,
    TimeEstimate,
    Version,
    parse_spec,
)
from GASACore.models.fetch import fetch_entry, fetch_model, import_model, installed_for, remove_model
from GASACore.models.install import InstalledModel, install_dir, installed_models, models_root, verify_install
from GASACore.models.lock import LockTimeout, file_lock
from GASACore.models.resolve import (
    ModelStatus,
    OfflineError,
    bundled_model_path,
    list_models,
    load_model_spec,
    lookup,
    resolve_model,
    with_catalog_labels,
)
from GASACore.models.schema import validate

__all__ = [
    "CATALOG_ENV",
    "IMPLEMENTED_RECIPES",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "CatalogLabel",
    "ChecksumError",
    "DownloadError",
    "DownloadPolicy",
    "InstalledModel",
    "License",
    "LockTimeout",
    "ModelFormat",
    "ModelStatus",
    "OfflineError",
    "PartRef",
    "Recipe",
    "TimeEstimate",
    "Version",
    "bundled_model_path",
    "catalog_files",
    "default_catalog_path",
    "describe_catalog_model",
    "download",
    "fetch_entry",
    "fetch_model",
    "file_lock",
    "import_model",
    "install_dir",
    "installed_for",
    "installed_models",
    "list_models",
    "load_catalog",
    "load_model_spec",
    "lookup",
    "models_root",
    "parse_spec",
    "read_catalog_file",
    "remove_model",
    "resolve_model",
    "schema_path",
    "validate",
    "verify_install",
    "with_catalog_labels",
]
