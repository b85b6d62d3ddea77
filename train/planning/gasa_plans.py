"""GASA-UNet / GASA-L plans derived from nnU-Net v2's default ``3d_fullres`` configuration.

The derived plans keep nnU-Net's pre-processing (same ``data_identifier``, so the preprocessed data is
shared) and change only the network: the class becomes the variant's (``GASACore.network.NETWORKS``:
its ``plans_class_path``), whose ``arch_kwargs`` are nnU-Net's plus ``patch_size`` and the block's options
(``gasa_*``), written by GASACore's one plans conversion (``GASACore.network.nnunet_architecture``). nnU-Net
v2 trains them as long as GASACore is importable (``pydoc.locate`` finds the class by its dotted name).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from GASACore.network import (
    BlockOptions,
    GASABlockOptions,
    architecture_from_nnunet,
    block_networks,
    network_spec,
    nnunet_architecture,
)

__all__ = [
    "GASA_VARIANTS",
    "PLAN_VARIANTS",
    "TRAIN_VARIANTS",
    "build_network_from_plans",
    "derive_gasa_plans",
    "gasa_l_blocks_per_stage",
    "plans_name_for",
]

logger = logging.getLogger(__name__)

#: The variants ``derive_gasa_plans`` can write: every registered network that adds a block to nnU-Net's U-Net.
PLAN_VARIANTS: tuple[str, ...] = block_networks()
#: Those whose block is GASA (``gasa-train plan``'s default and what its ``--gasa-*`` options configure).
GASA_VARIANTS: tuple[str, ...] = tuple(n for n in PLAN_VARIANTS if network_spec(n).block_options is GASABlockOptions)
#: The variants ``gasa-train train`` accepts: the derived ones, and ``nnunet`` (nnU-Net's own base plans).
TRAIN_VARIANTS: tuple[str, ...] = (*PLAN_VARIANTS, "nnunet")


def plans_name_for(base_plans_name: str, variant: str) -> str:
    """``nnUNetPlans`` + ``gasa-unet`` -> ``nnUNetPlans_gasa-unet`` (also the plans file's stem)."""
    if variant not in PLAN_VARIANTS:
        raise ValueError(f"GASA variant must be one of {list(PLAN_VARIANTS)}, got {variant!r}")
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
    options: BlockOptions | Mapping[str, Any] | None = None,
    configuration: str = "3d_fullres",
    keep_backbone: bool = False,
) -> dict[str, Any]:
    """A new plans dict whose ``configuration`` trains ``variant`` (the other configurations are dropped).

    Args:
        plans: nnU-Net v2 plans (``nnUNetPlans.json`` content) with a 3D ``configuration`` planned for a
            network without a block (``PlainConvUNet``, or ``ResidualEncoderUNet`` for residual variants).
        variant: ``gasa-unet`` (PlainConvUNet + GASA) or ``gasa-l`` (ResidualEncoderUNet, 3..3,5 blocks,
            1 decoder conv per stage, + GASA); any network of ``PLAN_VARIANTS``.
        options: the variant's block options (``GASABlockOptions``, or a mapping of its fields, validated);
            the paper's defaults when ``None``.
        configuration: the configuration to derive from.
        keep_backbone: keep the base network's encoder and decoder exactly (its blocks per stage too), so that
            the base's weights fit the GASA network (``--init-from``); a residual variant (``gasa-l``) then
            needs a ``ResidualEncoderUNet`` base (``nnUNetResEncUNet*Plans``). ``False``: the paper's topology
            (GASA-L's 3, .., 3, 5 residual blocks per encoder stage and one decoder conv per stage).

    Raises:
        ValueError: unknown variant, missing or non-3D configuration, an architecture nnU-Net did not
            plan as a U-Net GASACore builds, or (``keep_backbone``) a base of another backbone than the variant's.
    """
    new_name = plans_name_for(str(plans.get("plans_name", "nnUNetPlans")), variant)
    spec = network_spec(variant)
    block_options = spec.parse_block_options(options)
    configs = plans.get("configurations", {})
    if configuration not in configs:
        raise ValueError(f"plans have no configuration {configuration!r}; found {sorted(configs)}")
    config = copy.deepcopy(configs[configuration])
    if "inherits_from" in config:
        raise ValueError(f"configuration {configuration!r} inherits from another one; derive from a full configuration")
    patch_size = [int(p) for p in config["patch_size"]]
    if len(patch_size) != 3:
        raise ValueError(f"GASA plans need a 3D configuration, {configuration!r} has patch size {patch_size}")
    base = architecture_from_nnunet(config)
    base_spec = network_spec(base.name)
    if base_spec.has_block or (base_spec.residual_encoder and not spec.residual_encoder):
        raise ValueError(f"{variant} derives from a PlainConvUNet plan; got a {base.name} plan")
    if keep_backbone and base_spec.residual_encoder != spec.residual_encoder:
        raise ValueError(
            f"{variant} on the base's own backbone needs a ResidualEncoderUNet base (nnUNetResEncUNet*Plans), got a "
            f"{base_spec.description} plan: use --variant gasa-unet for PlainConvUNet models"
        )
    plan = base.plan
    if spec.residual_encoder and not keep_backbone:
        plan = dataclasses.replace(
            plan,
            n_blocks_per_stage=tuple(gasa_l_blocks_per_stage(plan.n_stages)),
            n_conv_per_stage_decoder_resenc=(1,) * (plan.n_stages - 1),
        )
    config["architecture"] = nnunet_architecture(variant, plan, block_options)
    derived = copy.deepcopy(dict(plans))
    derived["plans_name"] = new_name
    derived["configurations"] = {configuration: config}
    derived["gasa"] = {
        "variant": variant,
        "derived_from": plans.get("plans_name"),
        "configuration": configuration,
        "backbone": "base" if keep_backbone else "paper",
        "options": block_options.to_json() if block_options else None,
    }
    logger.info("derived %s: %s, patch %s, %d stages", new_name, spec.plans_class_path, patch_size, plan.n_stages)
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
