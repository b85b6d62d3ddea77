"""nnU-Net v2 results folder -> GASASegmenter model bundle."""

from __future__ import annotations

from train.export.bundle_export import export_results_folder, match_labels, training_record

__all__ = ["export_results_folder", "match_labels", "training_record"]
