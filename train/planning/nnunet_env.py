"""Where nnU-Net v2 keeps its data: ``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results``.

nnU-Net reads these three environment variables lazily (``nnunetv2.paths``), so setting them in
``os.environ`` before a planning or training call is enough.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NNUNET_ENV_VARS", "NNUNetPaths", "configure_nnunet_paths", "dataset_folder_name", "nnunet_dataset_name"]

logger = logging.getLogger(__name__)

#: The environment variables nnU-Net v2 reads for its three folders.
NNUNET_ENV_VARS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


@dataclass(frozen=True)
class NNUNetPaths:
    """The three nnU-Net v2 folders (absolute paths)."""

    raw: Path
    preprocessed: Path
    results: Path


def configure_nnunet_paths(
    raw: str | Path | None = None,
    preprocessed: str | Path | None = None,
    results: str | Path | None = None,
    *,
    require: tuple[str, ...] = NNUNET_ENV_VARS,
) -> NNUNetPaths:
    """Set nnU-Net's folder variables from explicit paths, falling back to the environment.

    Args:
        raw: ``nnUNet_raw`` (converted data sets ``DatasetXXX_Name/imagesTr`` ...).
        preprocessed: ``nnUNet_preprocessed`` (fingerprints, plans, preprocessed arrays).
        results: ``nnUNet_results`` (trained models).
        require: which of the three variables must end up set.

    Returns:
        The folders in effect (an unset, unrequired folder is returned as ``Path()``).

    Raises:
        ValueError: a required folder is neither given nor set in the environment.
    """
    given = {"nnUNet_raw": raw, "nnUNet_preprocessed": preprocessed, "nnUNet_results": results}
    resolved: dict[str, Path] = {}
    for name, value in given.items():
        if value is not None:
            os.environ[name] = str(Path(value).expanduser().resolve())
        if name in os.environ:
            resolved[name] = Path(os.environ[name])
            if name != "nnUNet_raw":
                resolved[name].mkdir(parents=True, exist_ok=True)
        elif name in require:
            option = "--" + name.split("_", 1)[1]
            raise ValueError(f"nnU-Net folder {name} is required: pass {option} PATH or set the environment variable")
    logger.debug("nnU-Net folders: %s", resolved)
    return NNUNetPaths(
        raw=resolved.get("nnUNet_raw", Path()),
        preprocessed=resolved.get("nnUNet_preprocessed", Path()),
        results=resolved.get("nnUNet_results", Path()),
    )


def nnunet_dataset_name(dataset_id: int, name: str) -> str:
    """nnU-Net's data set folder name: ``nnunet_dataset_name(7, "BTCV")`` -> ``"Dataset007_BTCV"``."""
    return f"Dataset{dataset_id:03d}_{name}"


def dataset_folder_name(dataset: str | int) -> str:
    """``DatasetXXX_Name`` of an existing data set, for an id (``7``, ``"007"``) or a full name (needs the
    folders set: nnU-Net looks the id up in them); a new data set's name is :func:`nnunet_dataset_name`."""
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    text = str(dataset)
    if text.startswith("Dataset"):
        return text
    if not text.isdigit():
        raise ValueError(f"dataset must be an integer id or a name like Dataset501_BTCV, got {dataset!r}")
    try:
        return str(maybe_convert_to_dataset_name(int(text)))
    except RuntimeError as err:
        raise ValueError(f"no nnU-Net data set with id {int(text)} in nnUNet_raw / nnUNet_preprocessed: {err}") from err
