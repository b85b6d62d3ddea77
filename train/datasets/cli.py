"""The ``convert`` sub-command of ``gasa-train``: public data sets and custom folders -> nnU-Net v2 raw."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from GASACore.labels import LABEL_SETS
from train.datasets.amos import convert_amos
from train.datasets.btcv import SPLITS_FILE_NAME, convert_btcv
from train.datasets.kits23 import convert_kits23
from train.datasets.pairs import TOTALSEG_TO_BTCV, convert_pairs
from train.datasets.writer import labels_of

__all__ = ["add_convert_parser", "run_convert"]

_COMMON_EPILOG = """\
Output: TARGET/DatasetXXX_Name/ with imagesTr/<case>_0000.nii.gz (symbolic links to the source images, or
copies with --copy), labelsTr/<case>.nii.gz (uint8, the image's geometry) and dataset.json. TARGET defaults
to $nnUNet_raw. Every case is checked first (files present, image/label size, spacing, origin and direction
equal within tolerance, label values in the label set); if any case is bad, all bad cases are listed, the
command fails and nothing is written.
"""

_HELP = {
    "btcv": (
        "BTCV abdomen, 13 organs",
        f"""\
Convert BTCV (MICCAI 2015 "Multi-Atlas Labeling Beyond the Cranial Vault", 30 labelled abdominal CT, 13
organs). Get it from Synapse (https://www.synapse.org/#!Synapse:syn3193805, free account, accept the
terms): the RawData.zip with Training/img/img0001.nii.gz and Training/label/label0001.nii.gz. The MONAI /
UNETR re-distribution (imagesTr/, labelsTr/, dataset_0.json) and flat img/ + label/ folders work too.
With a dataset_0.json split file (in SOURCE or --split-file) its training/validation lists select the cases
and are written as {SPLITS_FILE_NAME} (nnU-Net's splits_final.json format). Cases are named btcv_0001...
Default: Dataset017_BTCV.
""",
    ),
    "amos": (
        "AMOS22 abdomen, 15 organs (CT or MRI)",
        """\
Convert AMOS22 (500 CT + 100 MRI abdominal scans, 15 organs). Get it from Zenodo
(https://zenodo.org/record/7262581, amos22.zip, CC BY 4.0): imagesTr/, labelsTr/, imagesVa/, labelsVa/,
dataset.json. AMOS ids <= 500 are CT, > 500 MRI; --modality picks which (default ct; channel name CT or MRI).
The released validation cases are added to training unless --no-validation. Default: Dataset218_AMOS22_CT.
""",
    ),
    "kits23": (
        "KiTS23 kidney, tumor and cyst (region-based labels)",
        """\
Convert KiTS23 (489 contrast CT, kidney / tumor / cyst). Get it with the official repository
(https://github.com/neheller/kits23: pip install -e . then kits23_download_data), which fills
kits23/dataset/case_XXXXX/imaging.nii.gz + segmentation.nii.gz (CC BY-NC-SA 4.0). dataset.json uses
nnU-Net's regions kidney {1,2,3}, masses {2,3}, tumor {2} with regions_class_order [1, 3, 2], as nnU-Net's
own KiTS23 conversion. Default: Dataset220_KiTS2023.
""",
    ),
    "pairs": (
        "any folder of images + label maps",
        """\
Convert your own data: IMAGES and LABELS folders whose files pair by name (case7.nrrd with case7.nii.gz;
an image's nnU-Net channel suffix _0000 is ignored). Formats: .nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd.
--labels names the classes: btcv, amos, kits23 or a JSON file {"name": value, ...} (or a dataset.json).
--remap changes values first: totalseg-to-btcv (TotalSegmentator v2 ids -> BTCV 1-13, other structures
become background) or a JSON file {"source value": target value}. Default: Dataset500_Custom.
""",
    ),
}


def _add_common(parser: argparse.ArgumentParser, dataset_id: int | None, name: str | None) -> None:
    parser.add_argument(
        "--target", type=Path, default=None, help="folder receiving DatasetXXX_Name (default: $nnUNet_raw)"
    )
    parser.add_argument(
        "-d", "--dataset-id", type=int, default=dataset_id, help=f"nnU-Net data set id (default {dataset_id})"
    )
    parser.add_argument("--name", default=name, help=f"data set name (default {name or 'AMOS22_CT / AMOS22_MRI'})")
    parser.add_argument("--copy", action="store_true", help="copy images instead of symlinking them")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DatasetXXX_Name folder")


def add_convert_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``convert {btcv,amos,kits23,pairs}`` to ``subparsers`` and return the ``convert`` parser.

    Each sub-command's parser has ``func`` = :func:`run_convert`, which returns the exit code.
    """
    parser = subparsers.add_parser(
        "convert",
        help="convert BTCV / AMOS22 / KiTS23 / your own data to nnU-Net v2's raw layout",
        description="Convert a data set to nnU-Net v2's raw layout (DatasetXXX_Name).\n\n" + _COMMON_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = parser.add_subparsers(dest="dataset", metavar="{btcv,amos,kits23,pairs}", required=True)
    defaults = {"btcv": (17, "BTCV"), "amos": (218, None), "kits23": (220, "KiTS2023"), "pairs": (500, "Custom")}
    for kind, (short, long) in _HELP.items():
        sub = kinds.add_parser(
            kind,
            help=short,
            description=long + "\n" + _COMMON_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if kind == "pairs":
            sub.add_argument("images", type=Path, metavar="IMAGES", help="folder of images")
            sub.add_argument("labels_dir", type=Path, metavar="LABELS", help="folder of label maps")
            sub.add_argument("--labels", required=True, metavar="btcv|amos|kits23|FILE.json", help="output classes")
            sub.add_argument("--remap", default=None, metavar="totalseg-to-btcv|FILE.json", help="value remapping")
            sub.add_argument(
                "--strict-remap", action="store_true", help="source values missing from --remap are errors"
            )
            sub.add_argument("--channel-name", default="CT", help="channel 0's name (CT selects CT normalisation)")
        else:
            sub.add_argument("source", type=Path, metavar="SOURCE", help=f"the downloaded {kind.upper()} folder")
        if kind == "btcv":
            sub.add_argument("--split-file", type=Path, default=None, help="MONAI-style split JSON (dataset_0.json)")
        if kind == "amos":
            sub.add_argument("--modality", choices=("ct", "mri"), default="ct", help="which AMOS cases (default ct)")
            sub.add_argument("--no-validation", action="store_true", help="leave out imagesVa/labelsVa")
        _add_common(sub, *defaults[kind])
        sub.set_defaults(func=run_convert)
    return parser


def _read_json_object(value: str, option: str) -> dict[str, Any]:
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"{option} must be a known name or a JSON file, got {value!r}")
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("labels"), dict):
        data = data["labels"]
    if not isinstance(data, dict):
        raise ValueError(f"{option} file must hold a JSON object, got {type(data).__name__} in {value!r}")
    return data


def _pairs_options(args: argparse.Namespace) -> tuple[dict[str, int], dict[int, int] | None]:
    if args.labels.lower() in LABEL_SETS:
        labels = labels_of(LABEL_SETS[args.labels.lower()])
    else:
        labels = {str(k): int(v) for k, v in _read_json_object(args.labels, "--labels").items()}
    if args.remap is None:
        remap = None
    elif args.remap.lower() == "totalseg-to-btcv":
        remap = dict(TOTALSEG_TO_BTCV)
    else:
        remap = {int(k): int(v) for k, v in _read_json_object(args.remap, "--remap").items()}
    return labels, remap


def run_convert(args: argparse.Namespace) -> int:
    """Run the conversion described by parsed ``args``; print the data set folder; return 0.

    Raises:
        ConversionError: (a ValueError) listing every bad case; nothing was written.
        ValueError: On bad arguments, or (from FileExistsError) when the data set folder exists.
    """
    try:
        folder = _convert(args)
    except FileExistsError as err:
        raise ValueError(str(err)) from err
    print(f"wrote {folder}")
    return 0


def _convert(args: argparse.Namespace) -> Path:
    target = args.target if args.target is not None else os.environ.get("nnUNet_raw")  # noqa: SIM112 (nnU-Net's own spelling)
    if target is None:
        raise ValueError("a target folder is needed: pass --target or set $nnUNet_raw, got neither")
    common: dict[str, Any] = {"dataset_id": args.dataset_id, "link": not args.copy, "overwrite": args.overwrite}
    if args.name is not None:
        common["name"] = args.name
    if args.dataset == "btcv":
        folder = convert_btcv(args.source, target, split_file=args.split_file, **common)
    elif args.dataset == "amos":
        folder = convert_amos(
            args.source, target, modality=args.modality, include_validation=not args.no_validation, **common
        )
    elif args.dataset == "kits23":
        folder = convert_kits23(args.source, target, **common)
    else:
        labels, remap = _pairs_options(args)
        folder = convert_pairs(
            args.images,
            args.labels_dir,
            target,
            labels=labels,
            remap=remap,
            drop_unmapped=not args.strict_remap,
            channel_name=args.channel_name,
            **common,
        )
    return folder
