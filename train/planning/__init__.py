"""nnU-Net v2 planning for GASA: folders, fingerprint / plans / pre-processing, GASA-UNet and GASA-L plans."""

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
    PLAN_VARIANTS,
    TRAIN_VARIANTS,
    build_network_from_plans,
    derive_gasa_plans,
    gasa_l_blocks_per_stage,
    plans_name_for,
)
from train.planning.nnunet_env import NNUNetPaths, configure_nnunet_paths, dataset_folder_name
from train.planning.plan import PLANNERS, PlannerSettings, PlanningResult, run_planning, write_gasa_plans

__all__ = [
    "GASA_VARIANTS",
    "PLANNERS",
    "PLAN_VARIANTS",
    "TRAIN_VARIANTS",
    "BaseModel",
    "NNUNetPaths",
    "PlannerSettings",
    "PlanningResult",
    "build_network_from_plans",
    "configure_nnunet_paths",
    "dataset_folder_name",
    "derive_gasa_plans",
    "gasa_l_blocks_per_stage",
    "init_plans_name",
    "plans_name_for",
    "prepare_init_plans",
    "read_base_model",
    "run_planning",
    "transferred_plans",
    "write_gasa_plans",
]
