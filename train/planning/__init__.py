"""nnU-Net v2 planning for GASA: folders, fingerprint / plans / pre-processing, GASA-UNet and GASA-L plans."""

from __future__ import annotations

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
from train.planning.plan import PlannerSettings, PlanningResult, run_planning, write_gasa_plans

__all__ = [
    "GASA_VARIANTS",
    "PLAN_VARIANTS",
    "TRAIN_VARIANTS",
    "NNUNetPaths",
    "PlannerSettings",
    "PlanningResult",
    "build_network_from_plans",
    "configure_nnunet_paths",
    "dataset_folder_name",
    "derive_gasa_plans",
    "gasa_l_blocks_per_stage",
    "plans_name_for",
    "run_planning",
    "write_gasa_plans",
]
