"""Dataset converters to nnU-Net v2's raw layout: BTCV, AMOS22, KiTS23 and any folder of image/label pairs."""

from __future__ import annotations

from train.datasets.amos import convert_amos
from train.datasets.btcv import SPLITS_FILE_NAME, convert_btcv
from train.datasets.cli import add_convert_parser
from train.datasets.kits23 import KITS23_DATASET_LABELS, KITS23_REGIONS_CLASS_ORDER, convert_kits23
from train.datasets.pairs import TOTALSEG_TO_BTCV, convert_pairs
from train.datasets.validation import CaseIssue, ConversionError, GeometryTolerance
from train.datasets.writer import CaseSource, DatasetSpec, write_dataset

__all__ = [
    "KITS23_DATASET_LABELS",
    "KITS23_REGIONS_CLASS_ORDER",
    "SPLITS_FILE_NAME",
    "TOTALSEG_TO_BTCV",
    "CaseIssue",
    "CaseSource",
    "ConversionError",
    "DatasetSpec",
    "GeometryTolerance",
    "add_convert_parser",
    "convert_amos",
    "convert_btcv",
    "convert_kits23",
    "convert_pairs",
    "write_dataset",
]
