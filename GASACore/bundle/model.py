"""The model a segmentation runs: a GASASegmenter bundle or an nnU-Net v2 results folder.

A bundle is a folder (or a zip of one) holding ``model.json`` and one safetensors file per fold::

    {
      "schema_version": 1, "name": ..., "version": ..., "description": ..., "license": ...,
      "citation": ..., "intended_use": ...,
      "architecture": {"name": "gasa-unet", "plan": {...UNetPlan...}, "block_options": {...},
                       "num_input_channels": 1, "num_classes": 14},
      "preprocessing": {...PreprocessingConfig.to_json()...},
      "inference": {"mirror_axes": [0, 1, 2], "regions_class_order": null, "regions": null},
      "labels": [{"value": 1, "name": "spleen", "color": [r, g, b], "terminology": {...}}, ...],
      "folds": [{"name": "fold_0", "file": "fold_0.safetensors", "sha256": "..."}],
      "training": {...where the weights came from: data, recipe, metrics...}
    }

The patch size is written twice (``architecture.plan.patch_size`` and ``preprocessing.patch_size``, as
nnU-Net plans hold it); a model whose two differ is refused. Nothing here imports torch until weights are
loaded or a network is built.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from GASACore.bundle.integrity import verify_sha256
from GASACore.bundle.ranges import check_model_ranges
from GASACore.enums import StrEnum
from GASACore.errors import ModelError
from GASACore.labels import Label
from GASACore.network.block_options import BlockOptions
from GASACore.network.plans import UNetPlan
from GASACore.network.registry import NetworkSpec, network_spec
from GASACore.preprocessing.config import PreprocessingConfig
from GASACore.preprocessing.orientation import check_orientation_code

if TYPE_CHECKING:
    import torch
    from torch import nn

    from GASACore.recipe import RunRecipe

__all__ = ["SCHEMA_VERSION", "ArchitectureSpec", "FoldWeights", "ModelBundle", "ModelSource", "WeightFormat"]

logger = logging.getLogger(__name__)

#: Version of the model.json layout this code writes and reads.
SCHEMA_VERSION = 1


class ModelSource(StrEnum):
    """What a model was read from."""

    BUNDLE = "bundle"  #: a GASASegmenter bundle (folder or zip) with model.json
    NNUNET = "nnunet"  #: an nnU-Net v2 results folder (plans.json, dataset.json, fold_*/checkpoint_*.pth)


class WeightFormat(StrEnum):
    """How one fold's weights are stored."""

    SAFETENSORS = "safetensors"  #: a bundle's ``fold_N.safetensors``, SHA-256 recorded in model.json
    NNUNET_CHECKPOINT = "nnunet-checkpoint"  #: nnU-Net's ``checkpoint_final.pth``, read with weights_only=True


def _enum(kind: type[Enum], value: Any, what: str) -> Any:
    try:
        return kind(value.value if isinstance(value, Enum) else value)
    except ValueError:
        raise ModelError(f"{what} must be one of {[m.value for m in kind]}, got {value!r}") from None


@dataclass(frozen=True)
class ArchitectureSpec:
    """Which registered network to build, for which plan, channels, classes and block options.

    Attributes:
        name: a registry name (``GASACore.network.NETWORKS``).
        plan: the U-Net topology (fixes the input size).
        num_input_channels: image channels.
        num_classes: network outputs (background included for softmax models).
        block_options: the block's options (a mapping of their fields is parsed); the network's defaults
            when ``None``; ``None`` for networks without a block.

    Raises:
        ModelError: unknown name, invalid block options or channel / class counts, or (backbones of a fixed
            topology: V-Net, UNETR, nnMamba) a plan that is not the backbone's own.
    """

    name: str
    plan: UNetPlan
    num_input_channels: int
    num_classes: int
    block_options: BlockOptions | None = None

    def __post_init__(self) -> None:
        try:
            spec = network_spec(self.name)
            options = spec.parse_block_options(self.block_options)  # type: ignore[arg-type]
            if not spec.topology.follows_plan:  # V-Net, UNETR, nnMamba: the plan must be the backbone's own
                spec.topology.check_plan(self.plan, self.name)
        except ValueError as err:
            raise ModelError(f"model architecture: {err}") from err
        if int(self.num_input_channels) < 1 or int(self.num_classes) < 2:
            raise ModelError(
                "model architecture needs num_input_channels >= 1 and num_classes >= 2 (background + 1), "
                f"got {self.num_input_channels} and {self.num_classes}"
            )
        object.__setattr__(self, "block_options", options)
        object.__setattr__(self, "num_input_channels", int(self.num_input_channels))
        object.__setattr__(self, "num_classes", int(self.num_classes))

    @property
    def network(self) -> NetworkSpec:
        """The registry entry of ``name``."""
        return network_spec(self.name)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plan": self.plan.to_dict(),
            "block_options": self.block_options.to_json() if self.block_options else {},
            "num_input_channels": self.num_input_channels,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArchitectureSpec:
        try:
            return cls(
                name=str(data.get("name")),
                plan=UNetPlan.from_dict(data["plan"]),
                num_input_channels=int(data["num_input_channels"]),
                num_classes=int(data["num_classes"]),
                block_options=data.get("block_options") or None,
            )
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"model.json 'architecture' is malformed: {type(err).__name__}: {err}") from err

    def build_network(self, *, deep_supervision: bool = False) -> nn.Module:
        """A freshly initialised network of this architecture (imports torch)."""
        from GASACore.network.build import build_network

        return build_network(
            self.name,
            plan=self.plan,
            num_input_channels=self.num_input_channels,
            num_classes=self.num_classes,
            deep_supervision=deep_supervision,
            block_options=self.block_options,
        )


@dataclass(frozen=True)
class FoldWeights:
    """One fold's weight file; ``sha256`` is ``None`` only for nnU-Net folders (nothing to check against)."""

    name: str
    path: Path
    sha256: str | None
    file_format: WeightFormat

    def __post_init__(self) -> None:
        object.__setattr__(self, "file_format", _enum(WeightFormat, self.file_format, "fold file_format"))


@dataclass(frozen=True)
class ModelBundle:
    """A loaded, checked model description. Weights are read per fold by ``load_fold``.

    Attributes:
        root: the bundle or nnU-Net results folder.
        metadata: model.json as read (for an nnU-Net folder: a synthesised equivalent).
        architecture: what network to build.
        preprocessing: how images are pre-processed for it (a mapping is parsed as ``PreprocessingConfig``
            JSON and validated).
        labels: foreground labels with names, colours and terminology.
        folds: the folds that will be ensembled.
        mirror_axes: spatial axes the model allows for mirroring TTA; ``None`` only where they were not read
            (an nnU-Net checkpoint needs torch to read them; ``load_model`` always reads them).
        regions_class_order: for nnU-Net region-based models (sigmoid outputs), the label each
            region channel paints, in order; ``None`` for softmax models.
        source: a bundle or an nnU-Net results folder.
        regions: for region-based models, the label values each channel's region unites (KiTS23: (1, 2, 3),
            (2, 3), (2,)), as the model was trained; ``None`` for softmax models and where they are not known.
        orientation: ITK orientation code (``"RAS"``) the input is permuted / flipped to before inference (the
            training images' orientation, for models trained without mirroring); ``None``: the voxel array as
            stored, as nnU-Net runs (:mod:`GASACore.preprocessing.orientation`).
        recipe: how the pipeline's stages run this model where its publisher's recipe differs from plain
            nnU-Net (:class:`GASACore.recipe.RunRecipe`: orientation, resampling, step, mirroring, crop pre-pass,
            label renumbering, composite parts); ``None``: plain nnU-Net.

    Raises:
        ModelError: malformed pre-processing, or pre-processing that does not fit the network (another
            patch size or number of channels), or a region class order (or regions) without one entry per
            network output.
    """

    root: Path
    metadata: Mapping[str, Any]
    architecture: ArchitectureSpec
    preprocessing: PreprocessingConfig
    labels: tuple[Label, ...]
    folds: tuple[FoldWeights, ...]
    mirror_axes: tuple[int, ...] | None
    regions_class_order: tuple[int, ...] | None
    source: ModelSource = field(default=ModelSource.BUNDLE)
    regions: tuple[tuple[int, ...], ...] | None = None
    orientation: str | None = None
    recipe: RunRecipe | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", _enum(ModelSource, self.source, "model source"))
        if self.orientation is not None:
            try:
                object.__setattr__(self, "orientation", check_orientation_code(self.orientation))
            except ValueError as err:
                raise ModelError(f"model {self.name}: inference.{err}") from err
        self._check_regions()
        object.__setattr__(self, "preprocessing", _preprocessing(self.preprocessing, self.root))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "folds", tuple(self.folds))
        plan_patch = tuple(self.architecture.plan.patch_size)
        if tuple(self.preprocessing.patch_size) != plan_patch:
            raise ModelError(
                f"model {self.name}: the network is planned for patch size {plan_patch} (X, Y, Z) but its "
                f"pre-processing says {tuple(self.preprocessing.patch_size)}; the two must be equal"
            )
        channels, normalised = self.architecture.num_input_channels, self.preprocessing.num_channels
        if normalised != channels:
            raise ModelError(
                f"model {self.name}: the network takes {channels} input channel{'s' if channels != 1 else ''} but "
                f"its pre-processing normalises {normalised}; the two must be equal"
            )
        check_model_ranges(self)

    def _check_regions(self) -> None:
        order, regions = self.regions_class_order, self.regions
        if order is not None:
            object.__setattr__(self, "regions_class_order", tuple(int(v) for v in order))
        if regions is not None:
            object.__setattr__(self, "regions", tuple(tuple(int(v) for v in region) for region in regions))
        outputs = self.architecture.num_classes
        if order is not None and len(order) != outputs:
            raise ModelError(
                f"model {self.name}: regions_class_order must name one label per network output ({outputs}), "
                f"got {list(order)}"
            )
        if regions is not None and (order is None or len(regions) != len(order)):
            raise ModelError(
                f"model {self.name}: regions need a regions_class_order with one label per region, got "
                f"{len(regions)} regions and class order {order!r}"
            )

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", self.root.name))

    @property
    def patch_size(self) -> tuple[int, int, int]:
        """The network window ``(X, Y, Z)`` in voxels (plan and pre-processing agree, checked)."""
        return self.architecture.plan.patch_size

    def build_network(self, *, deep_supervision: bool = False) -> nn.Module:
        """A freshly initialised network of this model's architecture (weights come from ``load_fold``)."""
        return self.architecture.build_network(deep_supervision=deep_supervision)

    def verify(self) -> None:
        """Check every fold's SHA-256 (bundles); raises ``BundleIntegrityError`` on any difference."""
        for fold in self.folds:
            if fold.sha256 is not None:
                verify_sha256(fold.path, fold.sha256)
            elif not fold.path.is_file():
                raise ModelError(f"weight file {fold.path} of fold {fold.name} is missing")

    def load_fold(self, fold: FoldWeights, network: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Read one fold's state dict (hash checked again first) and check it fits the network."""
        from GASACore.bundle.weights import check_state_dict_fits, load_nnunet_checkpoint, load_safetensors

        if fold.sha256 is not None:
            verify_sha256(fold.path, fold.sha256)
        network = network if network is not None else self.build_network()
        if fold.file_format is WeightFormat.SAFETENSORS:
            state = load_safetensors(fold.path, network)  # header and shapes checked before loading
        else:
            state = load_nnunet_checkpoint(fold.path)
        check_state_dict_fits(network, state, str(fold.path))
        return state

    def select_folds(self, names: Sequence[str | int] | None) -> ModelBundle:
        """A copy restricted to the named folds, in the order given.

        Names are nnU-Net folder names: ``0`` and ``"fold_0"`` both name ``fold_0``; ``"all"`` names the
        ``fold_all`` folder (nnU-Net's model trained on every case), not "every fold". ``None`` or an empty
        list keeps every fold.

        Raises:
            ModelError: a named fold is not in the model (the message lists the folds it has).
        """
        if not names:
            return self
        wanted = [str(n) if str(n).startswith("fold_") else f"fold_{n}" for n in names]
        by_name = {fold.name: fold for fold in self.folds}
        unknown = [w for w in wanted if w not in by_name]
        if unknown:
            raise ModelError(f"folds {unknown} are not in model {self.name}; it has {sorted(by_name)}")
        return dataclasses.replace(self, folds=tuple(by_name[w] for w in wanted))


def _preprocessing(value: PreprocessingConfig | Mapping[str, Any], root: Path) -> PreprocessingConfig:
    if isinstance(value, PreprocessingConfig):
        return value
    if not isinstance(value, Mapping):
        raise ModelError(
            f"model 'preprocessing' of {root} must be a PreprocessingConfig or its JSON object, "
            f"got {type(value).__name__}"
        )
    try:
        return PreprocessingConfig.from_json(value)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(
            f"model 'preprocessing' of {root} is not a valid pre-processing configuration "
            f"(PreprocessingConfig JSON with schema_version, spacing, patch_size...): {type(err).__name__}: {err}"
        ) from err
