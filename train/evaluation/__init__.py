"""Evaluation of segmentations: per case and per class Dice and Normalized Surface Dice, reports and CLI.

"NSD" is the paper's: Nikolov et al.'s surface Dice with area-weighted boundary elements
(:mod:`train.evaluation.surface`); the voxel-count variant is :func:`nsd_voxel`.
"""

from __future__ import annotations

from train.evaluation.classes import (
    DEFAULT_TOLERANCE_MM,
    KITS23_CLASSES,
    KITS23_TOLERANCES_MM,
    EvaluationClass,
    resolve_classes,
)
from train.evaluation.cli import add_evaluate_parser
from train.evaluation.evaluate import (
    CONVENTIONS,
    NSD_DEFINITION,
    CaseResult,
    EvaluationResult,
    conventions_for,
    evaluate_arrays,
    evaluate_folders,
)
from train.evaluation.metrics import dice, nsd_voxel, surface_voxel_distances, surface_voxels
from train.evaluation.report import markdown_table, write_csv, write_json, write_markdown, write_plot, write_reports
from train.evaluation.surface import (
    SurfaceDistances,
    normalized_surface_dice,
    surface_area,
    surface_distances,
    surface_element_areas,
)

__all__ = [
    "CONVENTIONS",
    "DEFAULT_TOLERANCE_MM",
    "KITS23_CLASSES",
    "KITS23_TOLERANCES_MM",
    "NSD_DEFINITION",
    "CaseResult",
    "EvaluationClass",
    "EvaluationResult",
    "SurfaceDistances",
    "add_evaluate_parser",
    "conventions_for",
    "dice",
    "evaluate_arrays",
    "evaluate_folders",
    "markdown_table",
    "normalized_surface_dice",
    "nsd_voxel",
    "resolve_classes",
    "surface_area",
    "surface_distances",
    "surface_element_areas",
    "surface_voxel_distances",
    "surface_voxels",
    "write_csv",
    "write_json",
    "write_markdown",
    "write_plot",
    "write_reports",
]
