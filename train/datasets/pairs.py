"""Any folder of image / label-map pairs -> nnU-Net v2, with label names and an optional value remapping.

Pairing rule: an image and a label map belong together when their file names are equal after removing the
extension (GASACore's: ``.nii.gz``, ``.nii``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``; ``.seg.nrrd`` for label
maps) and, for images only, an nnU-Net channel suffix ``_0000``. So ``images/case7.nrrd`` pairs with
``labels/case7.nii.gz`` and ``imagesTr/case7_0000.nii.gz`` with ``labelsTr/case7.nii.gz``. The common name is
the case identifier.
An image without a label map (or the reverse) is reported as a bad case.

``remap`` maps source label values to output values; source values it does not list become background
(``drop_unmapped=True``, default) or are reported (``False``). ``TOTALSEG_TO_BTCV`` turns a TotalSegmentator
(v2, 117 classes) label map into BTCV's 13-organ numbering, as used for the demo model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from GASACore.io.formats import strip_suffix, volume_suffix
from train.datasets.validation import CaseIssue
from train.datasets.writer import CaseSource, DatasetSpec, write_dataset

__all__ = ["TOTALSEG_TO_BTCV", "convert_pairs", "find_pairs"]

#: TotalSegmentator v2 ("total" task) label id -> BTCV label value.
TOTALSEG_TO_BTCV: Mapping[int, int] = {
    1: 1,  # spleen
    2: 2,  # kidney_right -> right kidney
    3: 3,  # kidney_left -> left kidney
    4: 4,  # gallbladder
    15: 5,  # esophagus
    5: 6,  # liver
    6: 7,  # stomach
    52: 8,  # aorta
    63: 9,  # inferior_vena_cava
    64: 10,  # portal_vein_and_splenic_vein
    7: 11,  # pancreas
    8: 12,  # adrenal_gland_right
    9: 13,  # adrenal_gland_left
}


def _stem(path: Path) -> str | None:
    if volume_suffix(path) is None or not path.is_file() or path.name.startswith("."):
        return None
    return strip_suffix(path)


def find_pairs(images_dir: str | Path, labels_dir: str | Path) -> tuple[list[CaseSource], list[CaseIssue]]:
    """Pair the images and label maps of two folders by name (see the module docstring).

    Returns:
        The paired cases, and one issue per unpaired or ambiguous file.
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for kind, folder in (("images", images_dir), ("labels", labels_dir)):
        if not folder.is_dir():
            raise ValueError(f"{kind}_dir must be a folder, got {str(folder)!r}")
    issues: list[CaseIssue] = []
    images: dict[str, list[Path]] = {}
    for path in sorted(images_dir.iterdir()):
        stem = _stem(path)
        if stem is not None:
            images.setdefault(stem.removesuffix("_0000"), []).append(path)
    labels: dict[str, list[Path]] = {}
    for path in sorted(labels_dir.iterdir()):
        stem = _stem(path)
        if stem is not None:
            labels.setdefault(stem, []).append(path)
    cases = []
    for case_id in sorted(set(images) | set(labels)):
        found = images.get(case_id, []), labels.get(case_id, [])
        if any(len(paths) > 1 for paths in found):
            names = [p.name for paths in found for p in paths]
            issues.append(CaseIssue(case_id, f"expected one image and one label file, got several: {names}"))
        elif not found[0]:
            issues.append(CaseIssue(case_id, f"image file missing: expected {case_id}.* in {str(images_dir)!r}"))
        else:
            label = found[1][0] if found[1] else labels_dir / f"{case_id}.nii.gz"
            cases.append(CaseSource(case_id, found[0][0], label))
    return cases, issues


def convert_pairs(
    images_dir: str | Path,
    labels_dir: str | Path,
    target_root: str | Path,
    *,
    labels: Mapping[str, int],
    remap: Mapping[int, int] | None = None,
    drop_unmapped: bool = True,
    dataset_id: int = 500,
    name: str = "Custom",
    channel_name: str = "CT",
    link: bool = True,
    overwrite: bool = False,
) -> Path:
    """Convert a folder of images and a folder of label maps to ``target_root/DatasetXXX_Name``.

    Args:
        images_dir: Folder of images (NIfTI, NRRD or MetaImage; 3D, one channel).
        labels_dir: Folder of label maps with matching names.
        target_root: Where the data set folder goes (usually ``$nnUNet_raw``).
        labels: Output label name -> value (``"background": 0`` is added when absent), e.g. BTCV's.
        remap: Optional source value -> output value table (e.g. ``TOTALSEG_TO_BTCV``).
        drop_unmapped: With ``remap``: unlisted source values become background (True) or are errors.
        dataset_id: nnU-Net data set id.
        name: Data set name.
        channel_name: Channel 0's name; ``"CT"`` selects nnU-Net's CT normalisation.
        link: Symlink ``.nii.gz`` images instead of copying them.
        overwrite: Replace an existing data set folder.

    Returns:
        The data set folder.

    Raises:
        ConversionError: Listing every bad case (unpaired file, geometry mismatch, value outside ``labels``).
        ValueError: On bad folders or arguments.
        FileExistsError: If the data set folder exists and ``overwrite`` is False.
    """
    declared = {"background": 0, **{str(k): int(v) for k, v in labels.items()}}
    if remap is not None:
        bad = {k: v for k, v in remap.items() if int(k) < 0 or int(v) not in declared.values()}
        if bad:
            raise ValueError(f"remap targets must be declared label values {sorted(declared.values())}, got {bad}")
    cases, issues = find_pairs(images_dir, labels_dir)
    spec = DatasetSpec(dataset_id=dataset_id, name=name, labels=declared, channel_name=channel_name)
    return write_dataset(
        cases,
        target_root,
        spec,
        remap=remap,
        drop_unmapped=drop_unmapped,
        link=link,
        overwrite=overwrite,
        issues=issues,
        source=images_dir,
    )
