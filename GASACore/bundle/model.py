"""The model a segmentation runs: a GASASegmenter bundle or an nnU-Net v2 results folder.

A bundle is a folder (or a zip of one) holding ``model.json`` and one safetensors file per fold::

    {
      "schema_version": 1, "name": ..., "version": ..., "description": ..., "license": ...,
      "citation": ..., "intended_use": ...,
      "architecture": {"name": "gasa-unet", "plan": {...UNetPlan...}, "block_options": {...},
                       "num_input_channels": 1, "num_classes": 14},
      "preprocessing": {...PreprocessingConfig.to_json()...},
      "inference": {"mirror_axes": [0, 1, 2], "regions_class_order": null},
      "labels": [{"value": 1, "name": "spleen", "color": [r, g, b], "terminology": {...}}, ...],
      "folds": [{"name": "fold_0", "file": "fold_0.safetensors", "sha256": "..."}],
      "training": {...where the weights came from: data, recipe, metrics...}
    }
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from GASACore.bundle.integrity import verify_sha256
from GASACore.bundle.weights import check_state_dict_fits, load_nnunet_checkpoint, load_safetensors
from GASACore.errors import ModelError
from GASACore.labels import Label
from GASACore.network import NETWORKS, UNetPlan, build_network

__all__ = ["SCHEMA_VERSION", "ArchitectureSpec", "FoldWeights", "ModelBundle"]

logger = logging.getLogger(__name__)

#: Version of the model.json layout this code writes and reads.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ArchitectureSpec:
    """Which registered network to build, for which plan and options."""

    name: str
    plan: UNetPlan
    num_input_channels: int
    num_classes: int
    block_options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plan": self.plan.to_dict(),
            "block_options": dict(self.block_options),
            "num_input_channels": self.num_input_channels,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArchitectureSpec:
        name = data.get("name")
        if name not in NETWORKS:
            raise ModelError(f"model.json architecture.name must be one of {sorted(NETWORKS)}, got {name!r}")
        try:
            return cls(
                name=str(name),
                plan=UNetPlan.from_dict(data["plan"]),
                num_input_channels=int(data["num_input_channels"]),
                num_classes=int(data["num_classes"]),
                block_options=dict(data.get("block_options") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"model.json 'architecture' is malformed: {err}") from err


@dataclass(frozen=True)
class FoldWeights:
    """One fold's weight file; ``sha256`` is ``None`` only for nnU-Net folders (nothing to check against)."""

    name: str
    path: Path
    sha256: str | None
    file_format: str  # "safetensors" | "nnunet-checkpoint"


@dataclass(frozen=True)
class ModelBundle:
    """A loaded, verified model description. Weights are read per fold by ``load_fold``.

    Attributes:
        root: the bundle or nnU-Net results folder.
        metadata: model.json as read (for an nnU-Net folder: a synthesised equivalent).
        architecture: what network to build.
        preprocessing: the pre-processing description (``PreprocessingConfig`` JSON).
        labels: foreground labels with names, colours and terminology.
        folds: the folds that will be ensembled.
        mirror_axes: spatial axes the model allows for mirroring TTA.
        regions_class_order: for nnU-Net region-based models (sigmoid outputs), the label each
            region channel paints, in order; ``None`` for softmax models.
        source: ``"bundle"`` or ``"nnunet"``.
    """

    root: Path
    metadata: Mapping[str, Any]
    architecture: ArchitectureSpec
    preprocessing: Mapping[str, Any]
    labels: tuple[Label, ...]
    folds: tuple[FoldWeights, ...]
    mirror_axes: tuple[int, ...]
    regions_class_order: tuple[int, ...] | None
    source: str

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", self.root.name))

    @property
    def patch_size(self) -> tuple[int, int, int]:
        return self.architecture.plan.patch_size

    def preprocessing_config(self) -> Any:
        """The ``GASACore.preprocessing.PreprocessingConfig`` of this model."""
        from GASACore.preprocessing import PreprocessingConfig

        try:
            return PreprocessingConfig.from_json(self.preprocessing)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"model 'preprocessing' section of {self.root} is malformed: {err}") from err

    def build_network(self, *, deep_supervision: bool = False) -> nn.Module:
        """A freshly initialised network of this model's architecture (weights come from ``load_fold``)."""
        spec = self.architecture
        return build_network(
            spec.name,
            plan=spec.plan,
            num_input_channels=spec.num_input_channels,
            num_classes=spec.num_classes,
            deep_supervision=deep_supervision,
            **dict(spec.block_options),
        )

    def verify(self) -> None:
        """Check every fold's SHA-256 (bundles); raises ``BundleIntegrityError`` on any difference."""
        for fold in self.folds:
            if fold.sha256 is not None:
                verify_sha256(fold.path, fold.sha256)
            elif not fold.path.is_file():
                raise ModelError(f"weight file {fold.path} of fold {fold.name} is missing")

    def load_fold(self, fold: FoldWeights, network: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Read one fold's state dict (hash checked again first) and check it fits the network."""
        if fold.sha256 is not None:
            verify_sha256(fold.path, fold.sha256)
        reader = load_safetensors if fold.file_format == "safetensors" else load_nnunet_checkpoint
        state = reader(fold.path)
        check_state_dict_fits(network if network is not None else self.build_network(), state, str(fold.path))
        return state

    def select_folds(self, names: Sequence[str | int] | None) -> ModelBundle:
        """A copy restricted to the named folds (``0`` and ``"fold_0"`` both name fold 0)."""
        if not names:
            return self
        wanted = [str(n) if str(n).startswith("fold_") else f"fold_{n}" for n in names]
        by_name = {fold.name: fold for fold in self.folds}
        unknown = [w for w in wanted if w not in by_name]
        if unknown:
            raise ModelError(f"folds {unknown} are not in model {self.name}; it has {sorted(by_name)}")
        return ModelBundle(
            root=self.root,
            metadata=self.metadata,
            architecture=self.architecture,
            preprocessing=self.preprocessing,
            labels=self.labels,
            folds=tuple(by_name[w] for w in wanted),
            mirror_axes=self.mirror_axes,
            regions_class_order=self.regions_class_order,
            source=self.source,
        )
