"""BTCV (Multi-Atlas Labeling Beyond the Cranial Vault, MICCAI 2015, 13 abdominal organs) -> nnU-Net v2.

Accepted source layouts (the first that exists wins):

* the Synapse ``RawData`` download: ``Training/img/img0001.nii.gz`` + ``Training/label/label0001.nii.gz``
  (``source`` may also be the folder holding ``RawData/``);
* flat folders: ``img/img0001.nii.gz`` + ``label/label0001.nii.gz``;
* the MONAI / UNETR re-distribution: ``imagesTr/img0001.nii.gz`` + ``labelsTr/label0001.nii.gz``.

If a split file is found (``dataset_0.json`` in ``source``, or ``split_file``), its ``"training"`` and
``"validation"`` entries (``{"image": ..., "label": ...}``, paths relative to the split file) choose the
cases, and their split is written as ``splits_from_source.json`` next to ``dataset.json``: a list holding one
``{"train": [...], "val": [...]}`` fold, the format of nnU-Net's ``splits_final.json`` (copy it to
``nnUNet_preprocessed/DatasetXXX_Name/splits_final.json`` to train on that split instead of 5-fold CV).
Without a split file every ``img*`` file with its ``label*`` file is converted.

Case identifiers: ``img0001`` -> ``btcv_0001``. Labels: BTCV's 13 organs (``GASACore.labels.BTCV_LABELS``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from GASACore.labels import BTCV_LABELS
from train.datasets.validation import CaseIssue
from train.datasets.writer import CaseSource, DatasetSpec, labels_of, write_dataset

__all__ = ["SPLITS_FILE_NAME", "convert_btcv", "find_btcv_cases"]

#: Name of the split file written next to dataset.json when the source has a split.
SPLITS_FILE_NAME = "splits_from_source.json"

_LAYOUTS = (
    ("Training/img", "Training/label"),
    ("RawData/Training/img", "RawData/Training/label"),
    ("img", "label"),
    ("imagesTr", "labelsTr"),
)
_IMAGE = re.compile(r"^img(\d+)\.nii(\.gz)?$")


def _case_id(image: Path) -> str:
    match = _IMAGE.match(image.name)
    if match is None:
        raise ValueError(f"BTCV image names must look like img0001.nii.gz, got {image.name!r}")
    return f"btcv_{match.group(1)}"


def _find_layout(source: Path) -> tuple[Path, Path] | None:
    for images, labels in _LAYOUTS:
        if (source / images).is_dir():
            return source / images, source / labels
    return None


def _from_split(split_file: Path) -> tuple[list[CaseSource], list[CaseIssue], dict[str, list[str]]]:
    try:
        data = json.loads(split_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"split file must be readable JSON, got {str(split_file)!r}: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("training"), list):
        raise ValueError(
            f"split file must hold a 'training' list (MONAI dataset_0.json style), got {str(split_file)!r}"
        )
    cases: list[CaseSource] = []
    issues: list[CaseIssue] = []
    split: dict[str, list[str]] = {"train": [], "val": []}
    for key, fold in (("training", "train"), ("validation", "val")):
        for index, entry in enumerate(data.get(key, [])):
            if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
                issues.append(CaseIssue(f"{key}[{index}]", f"entry must have 'image' and 'label', got {entry!r}"))
                continue
            image = split_file.parent / entry["image"]
            try:
                case_id = _case_id(image)
            except ValueError as err:
                issues.append(CaseIssue(f"{key}[{index}]", str(err)))
                continue
            cases.append(CaseSource(case_id, image, split_file.parent / entry["label"]))
            split[fold].append(case_id)
    return cases, issues, split


def find_btcv_cases(source: str | Path) -> list[CaseSource]:
    """The BTCV cases of a folder laid out as RawData, flat img/label or imagesTr/labelsTr (no split file).

    A missing label file is kept as its expected path, so that validation reports it.
    """
    source = Path(source)
    layout = _find_layout(source)
    if layout is None:
        expected = ", ".join(f"{i}/ + {lab}/" for i, lab in _LAYOUTS)
        raise ValueError(f"expected a BTCV folder with one of {expected}, got {str(source)!r}")
    images, labels = layout
    cases = []
    for image in sorted(images.iterdir()):
        match = _IMAGE.match(image.name)
        if match:
            number, gz = match.group(1), match.group(2) or ""
            cases.append(CaseSource(f"btcv_{number}", image, labels / f"label{number}.nii{gz}"))
    return cases


def convert_btcv(
    source: str | Path,
    target_root: str | Path,
    *,
    dataset_id: int = 17,
    name: str = "BTCV",
    split_file: str | Path | None = None,
    link: bool = True,
    overwrite: bool = False,
) -> Path:
    """Convert BTCV to ``target_root/DatasetXXX_Name`` in nnU-Net v2's raw layout.

    Args:
        source: The BTCV folder (see the module docstring for the accepted layouts).
        target_root: Where the data set folder goes (usually ``$nnUNet_raw``).
        dataset_id: nnU-Net data set id (default 17, nnU-Net v1's Task017 for BTCV).
        name: Data set name.
        split_file: MONAI-style split JSON; default ``source/dataset_0.json`` when it exists.
        link: Symlink images instead of copying them.
        overwrite: Replace an existing data set folder.

    Returns:
        The data set folder.

    Raises:
        ConversionError: Listing every bad case (missing file, geometry mismatch, label outside 0-13).
        ValueError: If the source folder or split file is not BTCV-shaped.
        FileExistsError: If the data set folder exists and ``overwrite`` is False.
    """
    source = Path(source)
    if not source.is_dir():
        raise ValueError(f"source must be the BTCV folder, got {str(source)!r} (not a directory)")
    split_path = Path(split_file) if split_file is not None else source / "dataset_0.json"
    extra_files = {}
    issues: list[CaseIssue] = []
    if split_file is not None or split_path.is_file():
        cases, issues, split = _from_split(split_path)
        extra_files[SPLITS_FILE_NAME] = [split]
    else:
        cases = find_btcv_cases(source)
    spec = DatasetSpec(
        dataset_id=dataset_id,
        name=name,
        labels=labels_of(BTCV_LABELS),
        extra={
            "description": "BTCV abdomen, 13 organs (MICCAI 2015 Multi-Atlas Labeling Beyond the Cranial Vault)",
            "reference": "https://www.synapse.org/#!Synapse:syn3193805",
            "licence": "see the Synapse BTCV terms of use",
        },
    )
    return write_dataset(
        cases, target_root, spec, link=link, overwrite=overwrite, extra_files=extra_files, issues=issues, source=source
    )
