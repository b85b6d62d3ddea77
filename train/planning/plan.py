"""``gasa-train plan``: nnU-Net v2 fingerprint, planning and pre-processing, then the GASA plans.

Steps (nnU-Net's Python API, ``nnunetv2.experiment_planning.plan_and_preprocess_api``):
1. ``extract_fingerprints``: spacings, shapes and CT intensity statistics of the raw data set.
2. planning (nnU-Net's ``ExperimentPlanner``; optionally smaller networks / patches for CPU work)
   -> ``nnUNet_preprocessed/DatasetXXX/<plans>.json``.
3. ``preprocess``: resampled, normalised arrays for the chosen configurations.
4. with ``plan="paper-btcv"`` (or a patch size): ``<plans>_paper-btcv.json``, nnU-Net's plans with the paper's
   BTCV topology, from which the variants derive (``train.planning.gasa_plans.derive_base_plans``);
5. ``<base>_gasa-unet.json`` / ``<base>_gasa-l.json`` (any registered network) derived from ``3d_fullres``; each
   is checked by building its network through nnU-Net's ``get_network_from_plans`` (nnMamba needs CUDA there).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from GASACore.network import BlockOptions, network_spec
from train.planning.gasa_plans import (
    GASA_VARIANTS,
    build_network_from_plans,
    derive_base_plans,
    derive_gasa_plans,
    plans_name_for,
)
from train.planning.nnunet_env import dataset_folder_name

__all__ = ["PLANNERS", "PlannerSettings", "PlanningResult", "run_planning", "write_base_plans", "write_gasa_plans"]

logger = logging.getLogger(__name__)

_PLANNERS_MODULE = "nnunetv2.experiment_planning.experiment_planners"
#: nnU-Net's experiment planners by short name: its default (PlainConvUNet, ``nnUNetPlans``) and the residual
#: encoder presets (``nnUNetResEncUNetMPlans`` / ``LPlans`` / ``XLPlans``, as the DIAG kidney model's ResEnc-L).
PLANNERS: dict[str, str] = {
    "default": f"{_PLANNERS_MODULE}.default_experiment_planner.ExperimentPlanner",
    "resenc-m": f"{_PLANNERS_MODULE}.residual_unets.residual_encoder_unet_planners.nnUNetPlannerResEncM",
    "resenc-l": f"{_PLANNERS_MODULE}.residual_unets.residual_encoder_unet_planners.nnUNetPlannerResEncL",
    "resenc-xl": f"{_PLANNERS_MODULE}.residual_unets.residual_encoder_unet_planners.nnUNetPlannerResEncXL",
}


@dataclass(frozen=True)
class PlannerSettings:
    """Knobs of nnU-Net's ``ExperimentPlanner`` (``None`` keeps nnU-Net's default).

    Attributes:
        plans_name: name of the base plans (file ``<plans_name>.json``); ``None``: the planner's
            (``nnUNetPlans``, ``nnUNetResEncUNetLPlans``...).
        planner: a key of :data:`PLANNERS`: nnU-Net's default planner or a residual-encoder preset.
        gpu_memory_gb: memory target the planner sizes the patch for (nnU-Net default 8 GB; smaller
            values give smaller patches, useful for CPU training).
        target_spacing: 3d_fullres target spacing in mm, in the image's (x, y, z) axis order as nnU-Net's
            ``-overwrite_target_spacing`` expects it.
        base_features: features of the first stage (nnU-Net default 32).
        max_features: feature cap (nnU-Net default 320).
    """

    plans_name: str | None = None
    planner: str = "default"
    gpu_memory_gb: float | None = None
    target_spacing: tuple[float, float, float] | None = None
    base_features: int | None = None
    max_features: int | None = None

    def __post_init__(self) -> None:
        if self.planner not in PLANNERS:
            raise ValueError(f"planner must be one of {sorted(PLANNERS)}, got {self.planner!r}")


@dataclass
class PlanningResult:
    """Files written by ``run_planning``: ``base_plans`` is the one the variants derive from (``--plans-name``)."""

    dataset_name: str
    base_plans: Path
    gasa_plans: dict[str, Path] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)


def _make_planner(dataset_id: int, settings: PlannerSettings) -> Any:
    import importlib
    import warnings

    module, _, name = PLANNERS[settings.planner].rpartition(".")
    planner_class = getattr(importlib.import_module(module), name)
    kwargs: dict[str, Any] = {}
    if settings.plans_name is not None:
        kwargs["plans_name"] = settings.plans_name
    if settings.gpu_memory_gb is not None:
        kwargs["gpu_memory_target_in_gb"] = float(settings.gpu_memory_gb)
    if settings.target_spacing is not None:
        kwargs["overwrite_target_spacing"] = [float(s) for s in settings.target_spacing]
    with warnings.catch_warnings():  # the ResEnc presets warn about any non-default memory target: chosen here
        warnings.filterwarnings("ignore", message=".*non-standard gpu_memory_target_in_gb")
        planner = planner_class(dataset_id, **kwargs)
    if settings.base_features is not None:
        planner.UNet_base_num_features = int(settings.base_features)
        planner.UNet_reference_com_nfeatures = int(settings.base_features)
    if settings.max_features is not None:
        planner.UNet_max_features_3d = int(settings.max_features)
    return planner


def write_gasa_plans(
    preprocessed_dataset: Path,
    *,
    base_plans_name: str = "nnUNetPlans",
    variants: Sequence[str] = GASA_VARIANTS,
    options: BlockOptions | None = None,
    verify: bool = True,
) -> tuple[dict[str, Path], dict[str, int]]:
    """Write ``<base>_<variant>.json`` next to the base plans; returns the paths and parameter counts.

    Raises:
        FileNotFoundError: the base plans are missing (run the planning first).
        ValueError: the plans cannot carry a GASA network (see ``derive_gasa_plans``).
    """
    base_file = preprocessed_dataset / f"{base_plans_name}.json"
    if not base_file.is_file():
        raise FileNotFoundError(f"base plans {base_file} not found: expected nnU-Net planning output there")
    plans = json.loads(base_file.read_text(encoding="utf-8"))
    dataset_json = json.loads((preprocessed_dataset / "dataset.json").read_text(encoding="utf-8"))
    written: dict[str, Path] = {}
    parameters: dict[str, int] = {}
    if verify:
        parameters[base_plans_name] = _count(build_network_from_plans(plans, dataset_json))
    for variant in variants:
        block = network_spec(variant).block_options
        own = options if block is not None and isinstance(options, block) else None  # others: their defaults
        derived = derive_gasa_plans(plans, variant, options=own)
        if verify:
            parameters[derived["plans_name"]] = _count(build_network_from_plans(derived, dataset_json))
        target = preprocessed_dataset / f"{plans_name_for(base_plans_name, variant)}.json"
        target.write_text(json.dumps(derived, indent=4) + "\n", encoding="utf-8")
        written[variant] = target
        logger.info("wrote %s", target)
    return written, parameters


def _count(network: Any) -> int:
    return sum(p.numel() for p in network.parameters())


def run_planning(
    dataset: str | int,
    *,
    settings: PlannerSettings | None = None,
    variants: Sequence[str] = GASA_VARIANTS,
    options: BlockOptions | None = None,
    configurations: Sequence[str] = ("3d_fullres",),
    num_processes: int = 2,
    verify_integrity: bool = True,
    skip_preprocessing: bool = False,
    plan: str = "nnunet",
    patch_size: Sequence[int] | None = None,
) -> PlanningResult:
    """Fingerprint, plan and pre-process one raw data set, then write the GASA plans.

    The nnU-Net folders must already be configured (``configure_nnunet_paths``).

    Args:
        dataset: id (``501``) or name (``Dataset501_BTCV``) of a data set in ``nnUNet_raw``.
        settings: planner knobs (patch / network size, target spacing, plans name).
        variants: GASA plans to derive (``gasa-unet``, ``gasa-l``); empty for nnU-Net's plans only.
        options: block options (``GASABlockOptions``) for the variants with that block; the others get their
            block's defaults.
        configurations: configurations to pre-process (``3d_fullres`` is what GASA trains on).
        num_processes: worker processes for fingerprinting and pre-processing.
        verify_integrity: run nnU-Net's data set integrity check first.
        skip_preprocessing: plan only (the arrays already exist).
        plan: ``nnunet`` (nnU-Net's planner decides the network) or ``paper-btcv`` (the paper's BTCV plan, as
            base plans ``<plans>_paper-btcv`` next to nnU-Net's; same pre-processing).
        patch_size: nnU-Net's topology at this patch instead (base plans ``<plans>_patchXxYxZ``).
    """
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, preprocess
    from nnunetv2.paths import nnUNet_preprocessed

    settings = settings or PlannerSettings()
    name = dataset_folder_name(dataset)
    dataset_id = int(name[len("Dataset") : len("Dataset") + 3])
    extract_fingerprints([dataset_id], num_processes=num_processes, check_dataset_integrity=verify_integrity)
    planner = _make_planner(dataset_id, settings)
    planner.plan_experiment()
    plans_identifier = planner.plans_identifier
    if not skip_preprocessing:
        preprocess([dataset_id], plans_identifier, configurations=tuple(configurations), num_processes=[num_processes])
    folder = Path(str(nnUNet_preprocessed)) / name
    base_name = write_base_plans(folder, plans_identifier, plan=plan, patch_size=patch_size)
    gasa, parameters = write_gasa_plans(folder, base_plans_name=base_name, variants=variants, options=options)
    return PlanningResult(name, folder / f"{base_name}.json", gasa, parameters)


def write_base_plans(
    preprocessed_dataset: Path, plans_name: str, *, plan: str = "nnunet", patch_size: Sequence[int] | None = None
) -> str:
    """Write the base plans of a plan choice next to nnU-Net's (``derive_base_plans``); returns their name.

    ``plans_name`` itself when nnU-Net's plans are kept as they are.
    """
    plans = json.loads((preprocessed_dataset / f"{plans_name}.json").read_text(encoding="utf-8"))
    derived = derive_base_plans(plans, plan, patch_size=patch_size)
    if derived is None:
        return plans_name
    target = preprocessed_dataset / f"{derived['plans_name']}.json"
    target.write_text(json.dumps(derived, indent=4) + "\n", encoding="utf-8")
    logger.info("wrote %s", target)
    return str(derived["plans_name"])
