"""nnU-Net v2 planning for GASA: folders, fingerprint / plans / pre-processing, named plans, every network's plans."""

from __future__ import annotations

from train.planning.base_model import (
    BaseModel,
    init_plans_name,
    prepare_init_plans,
    read_base_model,
    transferred_plans,
)
from train.planning.gasa_plans import (
    GASA_VARIANTS,
    PLAN_CHOICES,
    PLAN_VARIANTS,
    TRAIN_VARIANTS,
    base_plans_suffix,
    build_network_from_plans,
    derive_base_plans,
    derive_gasa_plans,
    gasa_l_blocks_per_stage,
    plans_name_for,
)
from train.planning.nnunet_env import NNUNetPaths, configure_nnunet_paths, dataset_folder_name
from train.planning.plan import (
    PLANNERS,
    PlannerSettings,
    PlanningResult,
    run_planning,
    write_base_plans,
    write_gasa_plans,
)

__all__ = [
    "GASA_VARIANTS",
    "PLANNERS",
    "PLAN_CHOICES",
    "PLAN_VARIANTS",
    "TRAIN_VARIANTS",
    "BaseModel",
    "NNUNetPaths",
    "PlannerSettings",
    "PlanningResult",
    "base_plans_suffix",
    "build_network_from_plans",
    "configure_nnunet_paths",
    "dataset_folder_name",
    "derive_base_plans",
    "derive_gasa_plans",
    "gasa_l_blocks_per_stage",
    "init_plans_name",
    "plans_name_for",
    "prepare_init_plans",
    "read_base_model",
    "run_planning",
    "transferred_plans",
    "write_base_plans",
    "write_gasa_plans",
]
