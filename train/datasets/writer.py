"""Write validated cases into nnU-Net v2's raw layout, atomically.

``DatasetXXX_Name/imagesTr/<case>_0000.nii.gz``, ``labelsTr/<case>.nii.gz`` and ``dataset.json`` (plus any
extra JSON files such as ``splits_from_source.json``) are built in a hidden temporary folder next to the
target (``GASACore.io.atomic_output``) that is renamed into place only when every case passed. Cases are
validated and written in one pass (each label map is read once); from the first bad case on nothing more
is written, the remaining cases are still checked, and the temporary folder is removed before
:class:`~train.datasets.validation.ConversionError` lists every bad case.

Images that already are ``.nii.gz`` are symbolic links to the (absolute) source file by default, or copies;
other formats (``.nii``, ``.nrrd``, ``.mha``) are re-written as ``.nii.gz``. Label maps are re-written as
uint8 with the image's header geometry (they differ by at most the tolerance, so nnU-Net's exact
geometry check passes).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from GASACore.io import Geometry, atomic_output
from train.datasets.validation import (
    CaseIssue,
    ConversionError,
    GeometryTolerance,
    check_label_values,
    geometry_mismatches,
    read_geometry,
)
from train.planning.nnunet_env import nnunet_dataset_name

__all__ = ["CaseSource", "DatasetSpec", "labels_of", "write_dataset"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class CaseSource:
    """One case to convert: its nnU-Net identifier, image file and label file (None when missing)."""

    case_id: str
    image: Path | None
    label: Path | None


@dataclass(frozen=True)
class DatasetSpec:
    """What goes into ``dataset.json``.

    Attributes:
        dataset_id: nnU-Net data set id, 1-999.
        name: Data set name (letters, digits, ``_`` and ``-``).
        labels: Label name -> value, or name -> tuple of values for nnU-Net regions; must contain
            ``"background": 0``.
        channel_name: Name of channel 0; ``"CT"`` selects nnU-Net's CT normalisation.
        regions_class_order: Required by nnU-Net when ``labels`` defines regions.
        extra: Further dataset.json entries (description, reference, licence, ...).
    """

    dataset_id: int
    name: str
    labels: Mapping[str, int | tuple[int, ...]]
    channel_name: str = "CT"
    regions_class_order: tuple[int, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.dataset_id, int) or not 1 <= self.dataset_id <= 999:
            raise ValueError(f"dataset_id must be an integer 1-999, got {self.dataset_id!r}")
        if not _NAME.match(self.name):
            raise ValueError(f"name must be letters, digits, '_' or '-' (starting alphanumeric), got {self.name!r}")
        if self.labels.get("background") != 0:
            raise ValueError(f"labels must map 'background' to 0, got {dict(self.labels)!r}")
        values = self.label_values
        if any(not 0 < v <= 255 for v in values):
            raise ValueError(f"label values must be 1-255 (written as uint8), got {sorted(values)}")
        if any(isinstance(v, tuple) for v in self.labels.values()) and self.regions_class_order is None:
            raise ValueError("labels define regions (tuples of values), so regions_class_order is required, got None")

    @property
    def label_values(self) -> set[int]:
        """Every non-background value a label map may hold."""
        values: set[int] = set()
        for value in self.labels.values():
            values.update(value if isinstance(value, tuple) else (value,))
        values.discard(0)
        return values

    def to_json(self, num_training: int) -> dict[str, Any]:
        labels = {k: list(v) if isinstance(v, tuple) else v for k, v in self.labels.items()}
        data: dict[str, Any] = {
            "channel_names": {"0": self.channel_name},
            "labels": labels,
            "numTraining": num_training,
            "file_ending": ".nii.gz",
            "name": self.name,
        }
        if self.regions_class_order is not None:
            data["regions_class_order"] = list(self.regions_class_order)
        data.update(self.extra)
        data.setdefault("converted_by", "GASASegmenter gasa-train convert")
        return data


def labels_of(label_set: Sequence[Any]) -> dict[str, int]:
    """dataset.json labels (``background`` first) from GASACore ``Label`` objects (``.name``, ``.value``)."""
    return {"background": 0, **{label.name: int(label.value) for label in label_set}}


def _case_problems(
    case: CaseSource, spec: DatasetSpec, remap: Mapping[int, int] | None, drop_unmapped: bool, tol: GeometryTolerance
) -> tuple[list[str], Geometry | None, sitk.Image | None, Any]:
    """Validate one case; returns (problems, image geometry, label image, uint8 lookup)."""
    problems = []
    if not _CASE_ID.match(case.case_id):
        problems.append(f"case identifier must be letters, digits, '_', '-' or '.', got {case.case_id!r}")
    for kind, path in (("image", case.image), ("label", case.label)):
        if path is None or not Path(path).is_file():
            problems.append(f"{kind} file missing: expected {str(path) if path else 'a matching file'}")
    if problems:
        return problems, None, None, None
    try:
        geometry = read_geometry(Path(case.image))  # type: ignore[arg-type]
        label = sitk.ReadImage(str(case.label))
        label_geometry = Geometry.from_sitk(label)
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1]
        return [f"image and label must be readable by SimpleITK, got: {reason}"], None, None, None
    except ValueError as err:  # not 3D single-channel, or an invalid header geometry
        return [str(err)], None, None, None
    problems += geometry_mismatches(geometry, label_geometry, tol)
    check = check_label_values(sitk.GetArrayViewFromImage(label), spec.label_values, remap, drop_unmapped=drop_unmapped)
    problems += check.problems
    return problems, geometry, label, check.lookup


def _write_case(case: CaseSource, geometry: Geometry, label: sitk.Image, lookup: Any, root: Path, link: bool) -> None:
    image_out = root / "imagesTr" / f"{case.case_id}_0000.nii.gz"
    source = Path(case.image).resolve()  # type: ignore[arg-type]
    if source.name.endswith(".nii.gz"):
        if link:
            os.symlink(source, image_out)
        else:
            shutil.copy2(source, image_out)
    else:
        sitk.WriteImage(sitk.ReadImage(str(source)), str(image_out), useCompression=True)
    out = sitk.GetImageFromArray(lookup[sitk.GetArrayViewFromImage(label).astype("int64", copy=False)])
    geometry.apply_to(out)
    sitk.WriteImage(out, str(root / "labelsTr" / f"{case.case_id}.nii.gz"), useCompression=True)


def write_dataset(
    cases: Sequence[CaseSource],
    target_root: str | Path,
    spec: DatasetSpec,
    *,
    remap: Mapping[int, int] | None = None,
    drop_unmapped: bool = True,
    link: bool = True,
    overwrite: bool = False,
    extra_files: Mapping[str, Any] | None = None,
    issues: Sequence[CaseIssue] = (),
    tolerance: GeometryTolerance | None = None,
    source: str | Path = "",
) -> Path:
    """Validate ``cases`` and write them as ``target_root/DatasetXXX_Name`` (atomically).

    Args:
        cases: Cases to convert (identifiers must be unique).
        target_root: Folder receiving the data set folder (e.g. ``$nnUNet_raw``); created if needed.
        spec: The dataset.json content.
        remap: Optional source label value -> output value mapping.
        drop_unmapped: With ``remap``: unmapped source values become background (True) or are errors.
        link: Symlink ``.nii.gz`` images (True) or copy them.
        overwrite: Replace an existing data set folder instead of refusing.
        extra_files: File name -> JSON content written next to dataset.json.
        issues: Problems the caller already found (e.g. while discovering files); reported with the rest.
        tolerance: Accepted image / label geometry differences (default: ``GeometryTolerance()``).
        source: Source folder, named in error messages.

    Returns:
        The data set folder.

    Raises:
        ConversionError: If any case is bad (all are listed); nothing is left behind.
        FileExistsError: If the data set folder exists and ``overwrite`` is False.
        ValueError: If there is no case or identifiers repeat.
    """
    target = Path(target_root) / nnunet_dataset_name(spec.dataset_id, spec.name)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"target must not exist (pass overwrite=True to replace it), got existing {str(target)!r}"
        )
    ids = [case.case_id for case in cases]
    if not ids and not issues:
        raise ValueError(f"expected at least one case to convert in {str(source)!r}, found none")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"case identifiers must be unique, got duplicates {duplicates}")
    all_issues = list(issues)
    tolerance = tolerance or GeometryTolerance()
    with atomic_output(target, overwrite=overwrite, is_dir=True) as tmp:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        for case in cases:
            problems, geometry, label, lookup = _case_problems(case, spec, remap, drop_unmapped, tolerance)
            all_issues += [CaseIssue(case.case_id, p) for p in problems]
            if not all_issues:
                _write_case(case, geometry, label, lookup, tmp, link)  # type: ignore[arg-type]
                logger.info("converted %s", case.case_id)
        if all_issues:
            raise ConversionError(all_issues, source=source)
        (tmp / "dataset.json").write_text(json.dumps(spec.to_json(len(cases)), indent=2), encoding="utf-8")
        for file_name, content in (extra_files or {}).items():
            (tmp / file_name).write_text(json.dumps(content, indent=2), encoding="utf-8")
    logger.info("wrote %d cases to %s", len(cases), target)
    return target
