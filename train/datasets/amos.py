"""AMOS22 (Multi-Modality Abdominal Multi-Organ Segmentation, 15 organs) -> nnU-Net v2.

Source layout (the Zenodo release, https://zenodo.org/record/7262581): ``imagesTr/amos_0001.nii.gz`` +
``labelsTr/amos_0001.nii.gz`` (and ``dataset.json``); the released validation cases ``imagesVa`` +
``labelsVa`` are added to the training cases when present (``include_validation``), as nnU-Net's own
AMOS conversion does, because AMOS does not say how they should be used and 5-fold cross-validation covers
them. AMOS ids <= 500 are CT, > 500 MRI: ``modality="ct"`` (default) keeps the CT cases with channel name
``CT`` (nnU-Net's CT normalisation), ``modality="mri"`` the MRI cases with channel ``MRI`` (z-score).
Labels 1-15 as AMOS numbers them (``GASACore.labels.AMOS_LABELS``). Case identifiers are kept (``amos_0001``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from GASACore.labels import AMOS_LABELS
from train.datasets.writer import CaseSource, DatasetSpec, labels_of, write_dataset

__all__ = ["AMOS_MAX_CT_ID", "convert_amos", "find_amos_cases"]

#: AMOS case numbers up to this one are CT scans, the others MRI.
AMOS_MAX_CT_ID = 500

_IMAGE = re.compile(r"^(amos_(\d+))\.nii\.gz$")


def find_amos_cases(
    source: str | Path, *, modality: Literal["ct", "mri"] = "ct", include_validation: bool = True
) -> list[CaseSource]:
    """AMOS cases of ``source`` of one modality; a missing label file is kept as its expected path."""
    if modality not in ("ct", "mri"):
        raise ValueError(f"modality must be 'ct' or 'mri', got {modality!r}")
    source = Path(source)
    if not (source / "imagesTr").is_dir():
        raise ValueError(f"expected an AMOS22 folder with imagesTr/ and labelsTr/, got {str(source)!r}")
    pairs = [("imagesTr", "labelsTr")] + ([("imagesVa", "labelsVa")] if include_validation else [])
    cases = []
    for images, labels in pairs:
        if not (source / images).is_dir():
            continue
        for image in sorted((source / images).iterdir()):
            match = _IMAGE.match(image.name)
            if match is None:
                continue
            is_ct = int(match.group(2)) <= AMOS_MAX_CT_ID
            if is_ct == (modality == "ct"):
                cases.append(CaseSource(match.group(1), image, source / labels / image.name))
    return cases


def convert_amos(
    source: str | Path,
    target_root: str | Path,
    *,
    modality: Literal["ct", "mri"] = "ct",
    dataset_id: int = 218,
    name: str | None = None,
    include_validation: bool = True,
    link: bool = True,
    overwrite: bool = False,
) -> Path:
    """Convert AMOS22 (one modality) to ``target_root/DatasetXXX_Name`` in nnU-Net v2's raw layout.

    Args:
        source: The AMOS22 folder holding ``imagesTr/``, ``labelsTr/`` (and ``imagesVa/``, ``labelsVa/``).
        target_root: Where the data set folder goes (usually ``$nnUNet_raw``).
        modality: ``"ct"`` (AMOS ids <= 500) or ``"mri"`` (ids > 500).
        dataset_id: nnU-Net data set id (default 218, as nnU-Net's AMOS task 1 conversion).
        name: Data set name; default ``AMOS22_CT`` or ``AMOS22_MRI``.
        include_validation: Also convert ``imagesVa`` / ``labelsVa`` when present.
        link: Symlink images instead of copying them.
        overwrite: Replace an existing data set folder.

    Returns:
        The data set folder.

    Raises:
        ConversionError: Listing every bad case (missing label, geometry mismatch, label outside 0-15).
        ValueError: If the folder is not AMOS-shaped, the modality is unknown or no case has it.
        FileExistsError: If the data set folder exists and ``overwrite`` is False.
    """
    cases = find_amos_cases(source, modality=modality, include_validation=include_validation)
    if not cases:
        raise ValueError(f"expected {modality.upper()} cases (amos_XXXX.nii.gz) in {str(source)!r}, found none")
    spec = DatasetSpec(
        dataset_id=dataset_id,
        name=name or f"AMOS22_{modality.upper()}",
        labels=labels_of(AMOS_LABELS),
        channel_name="CT" if modality == "ct" else "MRI",
        extra={
            "description": f"AMOS22 abdomen, 15 organs, {modality.upper()} cases (training + released validation)",
            "reference": "https://amos22.grand-challenge.org/",
            "release": "https://zenodo.org/record/7262581",
            "licence": "CC BY 4.0",
        },
    )
    return write_dataset(cases, target_root, spec, link=link, overwrite=overwrite, source=source)
