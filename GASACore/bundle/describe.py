"""``describe_model``: what a model is, as one plain JSON object, without torch.

For a bundle folder, a zipped bundle (unpacked once into the cache, see ``GASACore.bundle.cache``) or an
nnU-Net v2 results folder. This is what ``gasa-segment --describe-model MODEL`` prints and what the 3D
Slicer module reads labels and terminology from, in Slicer's own process, which must never import torch.
No weights are read (their SHA-256 is checked by ``load_model`` before a run).

Axes: ``spacing`` and ``patch_size`` are in the image's x, y, z order (as SimpleITK and 3D Slicer give
sizes and spacings; ``axes`` says so); ``network_patch_size`` is the same window in the network's
``(X, Y, Z)`` order, i.e. the image's numpy ``(z, y, x)`` axes after the model's ``transpose_forward``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from GASACore.bundle.model import ModelBundle, ModelSource
from GASACore.bundle.store import open_model
from GASACore.errors import ModelError
from GASACore.labels import Label, terminology_entry
from GASACore.preprocessing.config import PreprocessingConfig

__all__ = ["DESCRIPTION_SCHEMA_VERSION", "describe", "describe_model"]

#: Version of the description's layout.
DESCRIPTION_SCHEMA_VERSION = 1
#: The axis order of ``spacing`` and ``patch_size`` in a description.
AXES = "x, y, z (image axes as SimpleITK and 3D Slicer order them)"


def describe_model(path: str | Path) -> dict[str, Any]:
    """Describe the model at ``path`` (bundle folder, ``.zip`` of one, or nnU-Net v2 results folder).

    Returns:
        A JSON-ready dict (see :func:`describe`) with ``path`` (as given, absolute) and ``format``:
        ``bundle-folder``, ``bundle-zip`` or ``nnunet-results-folder``.

    Raises:
        ModelError: no model at ``path``, or a malformed one (the message says what was expected).
    """
    location = Path(path).expanduser().absolute()
    if not location.exists():
        raise ModelError(f"model not found: {location} (expected a bundle folder, .zip or nnU-Net results folder)")
    model = open_model(location, read_checkpoint=False)
    if location.is_file():
        file_format = "bundle-zip"
    else:
        file_format = "bundle-folder" if model.source is ModelSource.BUNDLE else "nnunet-results-folder"
    return {"path": str(location), "format": file_format, **describe(model)}


def describe(model: ModelBundle) -> dict[str, Any]:
    """The description of an opened model (no weights read, torch-free).

    Keys: ``description_schema_version``, ``name``, ``version``, ``description``, ``source`` (``bundle`` /
    ``nnunet``), ``folder`` (where model.json or plans.json is), ``architecture`` (registry name),
    ``network`` (one line), ``block_options``, ``num_input_channels``, ``num_classes`` (network outputs),
    ``axes``, ``spacing`` (target spacing in mm; ``null`` for an axis a 2D configuration keeps),
    ``patch_size``, ``network_patch_size``, ``folds`` (names), ``labels`` (each ``value``, ``name``,
    ``color`` RGB 0-255, ``terminology`` in model.json's form or ``null``, ``terminology_entry``: Slicer's
    serialised string, ``""`` without terminology), ``regions`` (region-based models: per output channel
    the label value it paints, that label's name and ``region``, the label values the channel's region unites,
    ``null`` where the model does not record them; ``null`` for softmax models), ``mirror_axes`` (network axes
    allowed for mirroring TTA; ``null`` for nnU-Net folders, whose checkpoint holds them and needs torch to
    read), ``orientation`` (the orientation code inputs are turned to before inference, ``null``: the array as
    stored), ``license``, ``citation``, ``intended_use`` (``null`` when the model does not say).
    """
    meta = model.metadata
    architecture = model.architecture
    config = model.preprocessing
    return {
        "description_schema_version": DESCRIPTION_SCHEMA_VERSION,
        "name": model.name,
        "version": _text(meta.get("version")),
        "description": _text(meta.get("description")),
        "source": model.source.value,
        "folder": str(model.root),
        "architecture": architecture.name,
        "network": architecture.network.description,
        "block_options": architecture.block_options.to_json() if architecture.block_options else None,
        "num_input_channels": architecture.num_input_channels,
        "num_classes": architecture.num_classes,
        "axes": AXES,
        "spacing": image_axes(config, config.spacing),
        "patch_size": image_axes(config, config.patch_size),
        "network_patch_size": list(model.patch_size),
        "folds": [fold.name for fold in model.folds],
        "labels": [describe_label(label) for label in model.labels],
        "regions": _regions(model),
        "mirror_axes": list(model.mirror_axes) if model.mirror_axes is not None else None,
        "orientation": model.orientation,
        "license": _text(meta.get("license")),
        "citation": _text(meta.get("citation")),
        "intended_use": _text(meta.get("intended_use")),
    }


def describe_label(label: Label) -> dict[str, Any]:
    """``value``, ``name``, ``color``, ``terminology`` (model.json form) and ``terminology_entry`` (Slicer's string)."""
    return {**label.to_json(), "terminology_entry": terminology_entry(label)}


def image_axes(config: PreprocessingConfig, values: Sequence[float]) -> list[Any]:
    """Per-axis values in network order ``(X, Y, Z)`` -> the image's x, y, z order.

    Network axis ``i`` is the image's numpy axis ``transpose_forward[i]`` of ``(z, y, x)``. A 2D
    configuration's 2 values are the network's Y and Z; its X (kept from the case) is ``None``.

    Examples (``transpose_forward`` (0, 1, 2), nnU-Net's usual for CT):
        >>> image_axes(PreprocessingConfig(spacing=(3.0, 0.8, 0.7), patch_size=(48, 192, 160),
        ...     intensity_properties=({"mean": 0, "std": 1, "percentile_00_5": -1, "percentile_99_5": 1},)),
        ...     (3.0, 0.8, 0.7))
        [0.7, 0.8, 3.0]
    """
    network = [None, *values] if len(values) == 2 else list(values)
    zyx: list[Any] = [None, None, None]
    for network_axis, image_axis in enumerate(config.transpose_forward):
        zyx[image_axis] = network[network_axis]
    return zyx[::-1]


def _regions(model: ModelBundle) -> list[dict[str, Any]] | None:
    if model.regions_class_order is None:
        return None
    names = {label.value: label.name for label in model.labels}
    regions = model.regions or (None,) * len(model.regions_class_order)
    return [
        {"channel": channel, "value": value, "name": names.get(value), "region": list(region) if region else None}
        for channel, (value, region) in enumerate(zip(model.regions_class_order, regions, strict=True))
    ]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
