"""Evaluation of segmentations: per case and per class Dice and Normalized Surface Dice, reports and CLI."""

from __future__ import annotations

from train.evaluation.classes import (
    DEFAULT_TOLERANCE_MM,
    KITS23_CLASSES,
    KITS23_TOLERANCES_MM,
    EvaluationClass,
    resolve_classes,
)
from train.evaluation.cli import add_evaluate_parser
from train.evaluation.evaluate import CONVENTIONS, CaseResult, EvaluationResult, evaluate_arrays, evaluate_folders
from train.evaluation.metrics import dice, normalized_surface_dice, surface_distances, surface_voxels
from train.evaluation.report import markdown_table, write_csv, write_json, write_markdown, write_plot, write_reports

__all__ = [
    "CONVENTIONS",
    "DEFAULT_TOLERANCE_MM",
    "KITS23_CLASSES",
    "KITS23_TOLERANCES_MM",
    "CaseResult",
    "EvaluationClass",
    "EvaluationResult",
    "add_evaluate_parser",
    "dice",
    "evaluate_arrays",
    "evaluate_folders",
    "markdown_table",
    "normalized_surface_dice",
    "resolve_classes",
    "surface_distances",
    "surface_voxels",
    "write_csv",
    "write_json",
    "write_markdown",
    "write_plot",
    "write_reports",
]
