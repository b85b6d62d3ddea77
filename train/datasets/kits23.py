"""KiTS23 (2023 Kidney and Kidney Tumor Segmentation Challenge) -> nnU-Net v2 with region-based labels.

Source layout (https://github.com/neheller/kits23, ``kits23/dataset/`` after its download script):
``case_00000/imaging.nii.gz`` + ``case_00000/segmentation.nii.gz``; ``source`` may be the ``dataset``
folder or the repository root holding it. Labels in the files: 1 kidney, 2 tumor, 3 cyst.

``dataset.json`` uses nnU-Net's region-based training exactly as nnU-Net's own KiTS23 conversion
(``Dataset220_KiTS2023``): regions ``kidney`` = {1, 2, 3}, ``masses`` = {2, 3}, ``tumor`` = {2} (the
challenge's hierarchical evaluation classes) and ``regions_class_order`` = [1, 3, 2]: when the regions are
turned back into a label map, the kidney region is written as 1, masses as 3 (cyst) and then tumor as 2, so
a mass that is not tumor ends up as cyst. nnU-Net's conversion also sets the ``NibabelIOWithReorient``
reader; here it is left out by default (``reader_writer=None``: nnU-Net's SimpleITK reader, the same axis
order as the GASACore engine) and can be set.
"""

from __future__ import annotations

from pathlib import Path

from GASACore.labels import LABEL_SET_REGIONS
from train.datasets.writer import CaseSource, DatasetSpec, write_dataset

__all__ = ["KITS23_DATASET_LABELS", "KITS23_REGIONS_CLASS_ORDER", "convert_kits23", "find_kits23_cases"]

#: dataset.json labels: nnU-Net regions for KiTS23's hierarchical classes (GASACore's ``LABEL_SET_REGIONS``),
#: named as nnU-Net's Dataset220_KiTS2023: kidney (1, 2, 3), masses (2, 3), tumor 2.
KITS23_DATASET_LABELS: dict[str, int | tuple[int, ...]] = {
    "background": 0,
    **{
        name: region if len(region) > 1 else region[0]
        for name, region in zip(("kidney", "masses", "tumor"), LABEL_SET_REGIONS["kits23"], strict=True)
    },
}

#: Label written for each region (kidney, masses, tumor) when regions become a label map.
KITS23_REGIONS_CLASS_ORDER: tuple[int, ...] = (1, 3, 2)


def find_kits23_cases(source: str | Path) -> list[CaseSource]:
    """KiTS23 ``case_*`` folders of ``source`` (or ``source/dataset``); missing files kept as expected paths."""
    source = Path(source)
    root = source / "dataset" if (source / "dataset").is_dir() else source
    folders = sorted(p for p in root.glob("case_*") if p.is_dir()) if root.is_dir() else []
    if not folders:
        raise ValueError(f"expected KiTS23 case_XXXXX/ folders in {str(source)!r} or its dataset/, found none")
    return [CaseSource(f.name, f / "imaging.nii.gz", f / "segmentation.nii.gz") for f in folders]


def convert_kits23(
    source: str | Path,
    target_root: str | Path,
    *,
    dataset_id: int = 220,
    name: str = "KiTS2023",
    reader_writer: str | None = None,
    link: bool = True,
    overwrite: bool = False,
) -> Path:
    """Convert KiTS23 to ``target_root/DatasetXXX_Name`` with nnU-Net's region-based labels.

    Args:
        source: The KiTS23 ``dataset`` folder (or the folder holding it).
        target_root: Where the data set folder goes (usually ``$nnUNet_raw``).
        dataset_id: nnU-Net data set id (default 220, as nnU-Net's KiTS23 conversion).
        name: Data set name.
        reader_writer: Optional ``overwrite_image_reader_writer`` for dataset.json (nnU-Net's own
            conversion uses ``"NibabelIOWithReorient"``).
        link: Symlink images instead of copying them.
        overwrite: Replace an existing data set folder.

    Returns:
        The data set folder.

    Raises:
        ConversionError: Listing every bad case (missing file, geometry mismatch, label outside 0-3).
        ValueError: If no ``case_*`` folder is found.
        FileExistsError: If the data set folder exists and ``overwrite`` is False.
    """
    extra = {
        "description": "KiTS23 kidney, tumor and cyst; region-based labels (kidney+masses, masses, tumor)",
        "reference": "https://kits-challenge.org/kits23/",
        "licence": "CC BY-NC-SA 4.0",
    }
    if reader_writer is not None:
        extra["overwrite_image_reader_writer"] = reader_writer
    spec = DatasetSpec(
        dataset_id=dataset_id,
        name=name,
        labels=KITS23_DATASET_LABELS,
        regions_class_order=KITS23_REGIONS_CLASS_ORDER,
        extra=extra,
    )
    return write_dataset(find_kits23_cases(source), target_root, spec, link=link, overwrite=overwrite, source=source)
