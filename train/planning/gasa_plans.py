"""Plans of every registered network derived from nnU-Net v2's ``3d_fullres`` configuration, and the named plans.

The derived plans keep nnU-Net's pre-processing (same ``data_identifier``, so the preprocessed data is
shared) and change only the network: the class becomes the variant's (``GASACore.network.NETWORKS``:
its ``plans_class_path``), whose ``arch_kwargs`` are nnU-Net's plus ``patch_size`` and the block's options
(``gasa_*``, ``cbam_*`` ...), written by GASACore's one plans conversion (``GASACore.network.nnunet_architecture``).
Backbones with a fixed topology (V-Net, UNETR, nnMamba) take nnU-Net's patch, fitted to a multiple of their total
stride, and their own topology. nnU-Net v2 trains them as long as GASACore is importable (``pydoc.locate`` finds
the class by its dotted name).

Named plans (:func:`derive_base_plans`, ``gasa-train plan --plan paper-btcv``) replace the topology nnU-Net's
planner chose by another (``GASACore.network.NAMED_PLANS``: the paper's BTCV plan) or nnU-Net's topology at another
patch size (``--patch-size``), as new base plans ``<plans>_<name>`` from which the variants derive in turn.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from GASACore.network import (
    NAMED_PLANS,
    BlockOptions,
    GASABlockOptions,
    architecture_from_nnunet,
    network_spec,
    nnunet_architecture,
    variant_networks,
)

__all__ = [
    "GASA_VARIANTS",
    "PLAN_CHOICES",
    "PLAN_VARIANTS",
    "TRAIN_VARIANTS",
    "base_plans_suffix",
    "build_network_from_plans",
    "derive_base_plans",
    "derive_gasa_plans",
    "gasa_l_blocks_per_stage",
    "plan_of",
    "plans_name_for",
]

logger = logging.getLogger(__name__)

#: The variants ``derive_gasa_plans`` can write: every registered network but nnU-Net's own U-Nets.
PLAN_VARIANTS: tuple[str, ...] = variant_networks()
#: GASA on nnU-Net's U-Nets (``gasa-train plan``'s default, what ``--init-from`` builds on a published model).
GASA_VARIANTS: tuple[str, ...] = tuple(
    n
    for n in PLAN_VARIANTS
    if network_spec(n).block_options is GASABlockOptions and network_spec(n).topology.follows_plan
)
#: The variants ``gasa-train train`` accepts: the derived ones, and ``nnunet`` (nnU-Net's own base plans).
TRAIN_VARIANTS: tuple[str, ...] = (*PLAN_VARIANTS, "nnunet")
#: ``--plan`` choices: nnU-Net's planner (``nnunet``) or a named plan.
PLAN_CHOICES: tuple[str, ...] = ("nnunet", *NAMED_PLANS)


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
            1 decoder conv per stage, + GASA); any network of ``PLAN_VARIANTS`` (a backbone of a fixed topology
            takes the plan's patch, fitted to its total stride, and its own topology; its batch size stays).
        options: the variant's block options (``GASABlockOptions``, or a mapping of its fields, validated);
            the paper's defaults when ``None``.
        configuration: the configuration to derive from.
        keep_backbone: keep the base network's encoder and decoder exactly (its blocks per stage too), so that
            the base's weights fit the GASA network (``--init-from``); a residual variant (``gasa-l``) then
            needs a ``ResidualEncoderUNet`` base (``nnUNetResEncUNet*Plans``). ``False``: the paper's topology
            (GASA-L's 3, .., 3, 5 residual blocks per encoder stage and one decoder conv per stage).

    Raises:
        ValueError: unknown variant, missing or non-3D configuration, an architecture nnU-Net did not
            plan as a U-Net GASACore builds, or (``keep_backbone``) a base of another backbone than the variant's
            (or a variant with a fixed topology).
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
    fixed = not spec.topology.follows_plan
    if base_spec.has_block or not base_spec.topology.follows_plan:
        raise ValueError(f"{variant} derives from a PlainConvUNet plan; got a {base.name} plan")
    if base_spec.residual_encoder and not spec.residual_encoder and not fixed:
        raise ValueError(f"{variant} derives from a PlainConvUNet plan; got a {base.name} plan")
    if keep_backbone and (fixed or base_spec.residual_encoder != spec.residual_encoder):
        raise ValueError(
            f"{variant} on the base's own backbone needs a ResidualEncoderUNet base (nnUNetResEncUNet*Plans), got a "
            f"{base_spec.description} plan: use --variant gasa-unet for PlainConvUNet models"
            if not fixed
            else f"{variant} has its own topology ({spec.topology}): it cannot keep the base's backbone"
        )
    plan = base.plan
    if fixed:
        patch = spec.topology.fit_patch(plan.patch_size)
        if patch != plan.patch_size:
            logger.info("%s: patch %s fitted to %s (multiples of %s)", variant, plan.patch_size, patch,
                        spec.topology.fixed.total_stride)  # fmt: skip
        plan = spec.topology.plan_for(patch)
        config["patch_size"] = list(patch)
    elif spec.residual_encoder and not keep_backbone:
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
        "topology": spec.topology.value,
        "plan": plan_of(plans),
        "patch_size": list(plan.patch_size),
    }
    logger.info("derived %s: %s, patch %s, %d stages", new_name, spec.plans_class_path, patch_size, plan.n_stages)
    return derived


def plan_of(plans: Mapping[str, Any]) -> str:
    """Which plan a plans file holds: ``nnunet`` (nnU-Net's planner) or the name :func:`derive_base_plans` gave."""
    return str((plans.get("gasa") or {}).get("plan") or "nnunet")


def base_plans_suffix(plan: str = "nnunet", patch_size: Sequence[int] | None = None) -> str | None:
    """The suffix of the base plans a plan choice writes (``paper-btcv``, ``patch32x32x32``); ``None``: nnU-Net's.

    Raises:
        ValueError: an unknown plan, a patch that is not 3 positive sizes, or a patch with a named plan (which
            fixes its own).
    """
    if plan not in PLAN_CHOICES:
        raise ValueError(f"plan must be one of {list(PLAN_CHOICES)}, got {plan!r}")
    if patch_size is None:
        return None if plan == "nnunet" else plan
    patch = [int(p) for p in patch_size]
    if len(patch) != 3 or min(patch) < 1:
        raise ValueError(f"patch size must be 3 positive sizes (X, Y, Z), got {list(patch_size)}")
    if plan != "nnunet":
        raise ValueError(f"plan {plan!r} fixes its own patch {list(NAMED_PLANS[plan].patch_size)}; got a patch too")
    return "patch" + "x".join(str(p) for p in patch)


def derive_base_plans(
    plans: Mapping[str, Any],
    plan: str = "nnunet",
    *,
    patch_size: Sequence[int] | None = None,
    configuration: str = "3d_fullres",
) -> dict[str, Any] | None:
    """nnU-Net base plans (a ``PlainConvUNet``) with another topology; ``None`` when nnU-Net's is kept as it is.

    Args:
        plans: nnU-Net's plans, as its planner wrote them (``PlainConvUNet`` or ``ResidualEncoderUNet``).
        plan: ``nnunet`` (the planner's topology) or a name of ``GASACore.network.NAMED_PLANS`` (``paper-btcv``:
            the paper's patch 48x192x192, strides and features); its network is ``nnunet`` (PlainConvUNet).
        patch_size: with ``plan="nnunet"``: nnU-Net's topology at this patch (a multiple of its total stride).
        configuration: the configuration whose network is replaced (the others are dropped).

    Returns:
        The plans ``<plans_name>_<suffix>`` (``base_plans_suffix``), same pre-processing (``data_identifier``),
        ``gasa.plan`` recording the choice; the variants then derive from them.

    Raises:
        ValueError: see :func:`base_plans_suffix`, a missing configuration or a patch nnU-Net's strides do not
            divide.
    """
    suffix = base_plans_suffix(plan, patch_size)
    if suffix is None:
        return None
    configs = plans.get("configurations", {})
    if configuration not in configs or "inherits_from" in configs[configuration]:
        raise ValueError(f"plans have no full configuration {configuration!r}; found {sorted(configs)}")
    config = copy.deepcopy(configs[configuration])
    if plan == "nnunet":
        own = architecture_from_nnunet(config).plan
        chosen = dataclasses.replace(own, patch_size=tuple(int(p) for p in patch_size or ()))
        chosen.bottleneck_size  # noqa: B018 - raises for a patch nnU-Net's strides do not divide
    else:
        chosen = NAMED_PLANS[plan]
    config["patch_size"] = list(chosen.patch_size)
    config["architecture"] = nnunet_architecture("nnunet", chosen)
    name = f"{plans.get('plans_name', 'nnUNetPlans')}_{suffix}"
    derived = copy.deepcopy(dict(plans))
    derived["plans_name"] = name
    derived["configurations"] = {configuration: config}
    derived["gasa"] = {
        "plan": plan if plan != "nnunet" else suffix,
        "derived_from": plans.get("plans_name"),
        "configuration": configuration,
        "patch_size": list(chosen.patch_size),
        "bottleneck_size": list(chosen.bottleneck_size),
    }
    logger.info("derived %s: patch %s, bottleneck %s", name, list(chosen.patch_size), list(chosen.bottleneck_size))
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
