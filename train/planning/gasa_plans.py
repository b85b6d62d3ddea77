"""GASA-UNet / GASA-L plans derived from nnU-Net v2's default ``3d_fullres`` configuration.

The derived plans keep nnU-Net's pre-processing (same ``data_identifier``, so the preprocessed data is
shared) and change only the network: the class becomes one of GASACore's GASA networks, whose
``arch_kwargs`` are nnU-Net's plus ``patch_size`` and the ``gasa_*`` options. nnU-Net v2 trains them as
long as GASACore is importable (``pydoc.locate`` finds the class by its dotted name).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "GASA_NETWORK_CLASSES",
    "GASA_VARIANTS",
    "GASAOptions",
    "build_network_from_plans",
    "derive_gasa_plans",
    "gasa_l_blocks_per_stage",
    "plans_name_for",
]

logger = logging.getLogger(__name__)

#: Variant name -> dotted network class nnU-Net instantiates.
GASA_NETWORK_CLASSES: Mapping[str, str] = {
    "gasa-unet": "GASACore.network.unets.GASAPlainConvUNet",
    "gasa-l": "GASACore.network.unets.GASAResidualEncoderUNet",
}
#: The variants ``derive_gasa_plans`` writes.
GASA_VARIANTS: tuple[str, ...] = tuple(GASA_NETWORK_CLASSES)


@dataclass(frozen=True)
class GASAOptions:
    """GASA block options written into ``arch_kwargs`` (paper defaults: dim 25, 5 heads, voxel PE)."""

    dim: int = 25
    heads: int = 5
    pe: str = "voxels"
    qkv_norm: bool = False
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.dim < 1 or self.heads < 1 or self.dim % self.heads:
            raise ValueError(f"GASA dim must be a positive multiple of heads, got dim={self.dim}, heads={self.heads}")
        if self.pe not in ("voxels", "tokens", "none"):
            raise ValueError(f"GASA positional embedding must be 'voxels', 'tokens' or 'none', got {self.pe!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GASA dropout must be in [0, 1), got {self.dropout}")

    def arch_kwargs(self) -> dict[str, Any]:
        return {f"gasa_{key}": value for key, value in asdict(self).items()}


def plans_name_for(base_plans_name: str, variant: str) -> str:
    """``nnUNetPlans`` + ``gasa-unet`` -> ``nnUNetPlans_gasa-unet`` (also the plans file's stem)."""
    if variant not in GASA_NETWORK_CLASSES:
        raise ValueError(f"GASA variant must be one of {list(GASA_VARIANTS)}, got {variant!r}")
    return f"{base_plans_name}_{variant}"


def gasa_l_blocks_per_stage(n_stages: int) -> list[int]:
    """Residual blocks per encoder stage for GASA-L: 3 per stage, 5 in the last (paper: 3,3,3,3,3,5)."""
    if n_stages < 2:
        raise ValueError(f"GASA-L needs at least 2 encoder stages, got {n_stages}")
    return [3] * (n_stages - 1) + [5]


def derive_gasa_plans(
    plans: Mapping[str, Any],
    variant: str,
    *,
    options: GASAOptions | None = None,
    configuration: str = "3d_fullres",
) -> dict[str, Any]:
    """A new plans dict whose ``configuration`` trains ``variant`` (the other configurations are dropped).

    Args:
        plans: nnU-Net v2 plans (``nnUNetPlans.json`` content) with a 3D ``configuration``.
        variant: ``gasa-unet`` (PlainConvUNet + GASA) or ``gasa-l`` (ResidualEncoderUNet, 3..3,5 blocks,
            1 decoder conv per stage, + GASA).
        options: GASA block options; paper defaults when ``None``.
        configuration: the configuration to derive from.

    Raises:
        ValueError: unknown variant, missing or non-3D configuration, or an architecture nnU-Net did not
            plan as a U-Net.
    """
    options = options or GASAOptions()
    new_name = plans_name_for(str(plans.get("plans_name", "nnUNetPlans")), variant)
    configs = plans.get("configurations", {})
    if configuration not in configs:
        raise ValueError(f"plans have no configuration {configuration!r}; found {sorted(configs)}")
    config = copy.deepcopy(configs[configuration])
    if "inherits_from" in config:
        raise ValueError(f"configuration {configuration!r} inherits from another one; derive from a full configuration")
    patch_size = [int(p) for p in config["patch_size"]]
    if len(patch_size) != 3:
        raise ValueError(f"GASA plans need a 3D configuration, {configuration!r} has patch size {patch_size}")
    architecture = config.get("architecture")
    if not isinstance(architecture, dict) or "arch_kwargs" not in architecture:
        raise ValueError("plans configuration has no 'architecture.arch_kwargs' (nnU-Net v2 >= 2.4 plans expected)")
    kwargs = dict(architecture["arch_kwargs"])
    n_stages = int(kwargs["n_stages"])
    if variant == "gasa-l":
        kwargs.pop("n_conv_per_stage", None)
        kwargs["n_blocks_per_stage"] = gasa_l_blocks_per_stage(n_stages)
        kwargs["n_conv_per_stage_decoder"] = [1] * (n_stages - 1)
    elif "n_conv_per_stage" not in kwargs:
        raise ValueError(f"gasa-unet derives from a PlainConvUNet plan; got kwargs {sorted(kwargs)}")
    kwargs["patch_size"] = patch_size
    kwargs.update(options.arch_kwargs())
    architecture = {**architecture, "network_class_name": GASA_NETWORK_CLASSES[variant], "arch_kwargs": kwargs}
    config["architecture"] = architecture
    derived = copy.deepcopy(dict(plans))
    derived["plans_name"] = new_name
    derived["configurations"] = {configuration: config}
    derived["gasa"] = {
        "variant": variant,
        "derived_from": plans.get("plans_name"),
        "configuration": configuration,
        "options": asdict(options),
    }
    logger.info("derived %s: %s, patch %s, %d stages", new_name, GASA_NETWORK_CLASSES[variant], patch_size, n_stages)
    return derived


def build_network_from_plans(
    plans: Mapping[str, Any],
    dataset_json: Mapping[str, Any],
    configuration: str = "3d_fullres",
    *,
    deep_supervision: bool = True,
) -> Any:
    """Build the configuration's network exactly as nnU-Net v2's trainer does (``get_network_from_plans``)."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    manager = PlansManager(dict(plans))
    config = manager.get_configuration(configuration)
    label_manager = manager.get_label_manager(dict(dataset_json))
    return get_network_from_plans(
        config.network_arch_class_name,
        config.network_arch_init_kwargs,
        config.network_arch_init_kwargs_req_import,
        determine_num_input_channels(manager, config, dict(dataset_json)),
        label_manager.num_segmentation_heads,
        allow_init=True,
        deep_supervision=deep_supervision,
    )
