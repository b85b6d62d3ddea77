"""Check that the slices of a DICOM series form one regular 3D grid before SimpleITK stacks them.

SimpleITK (GDCM) stacks whatever slices it is given: it reads duplicate positions as two slices, missing slices
as a mean spacing, a gantry-tilted series as an orthogonal one, a localizer as one more slice. Each of these
misplaces anatomy without a word, so each is skipped (localizers, non-image objects), removed (exact duplicate
files) or refused here with the files and numbers involved.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from GASACore.errors import DamagedFileError, InputError, UnsupportedGeometryError
from GASACore.io.dicomtags import non_image_kind

__all__ = ["SliceInfo", "read_slice_info", "stack_slices"]

logger = logging.getLogger(__name__)

#: Slices closer than this (mm) along the normal are at the same position.
DUPLICATE_MM = 1e-3
#: A step between slices may differ from the median step by this fraction (or 0.01 mm) before it is a gap.
STEP_TOLERANCE = 0.05
#: Tags without which GDCM places a slice at an assumed position, orientation or pixel size (0, identity, 1 mm).
_GEOMETRY_TAGS = {
    "0020|0032": "ImagePositionPatient (0020,0032)",
    "0020|0037": "ImageOrientationPatient (0020,0037)",
    "0028|0030": "PixelSpacing (0028,0030)",
}
#: A slice may lie this fraction of a pixel sideways of the slice normal before the stack counts as tilted.
TILT_TOLERANCE_PIXELS = 0.1


@dataclass(frozen=True)
class SliceInfo:
    """What one slice file's header says (read with SimpleITK, no pixel data).

    Attributes:
        file: the slice file.
        size: columns, rows, frames.
        spacing: pixel spacing (mm) along the row and column directions.
        origin: LPS position (mm) of the first pixel (ImagePositionPatient).
        direction: 3x3 direction (columns: row direction, column direction, their cross product).
        image_type: ImageType (0008,0008), e.g. ``ORIGINAL\\PRIMARY\\AXIAL``.
        kind: the name of a non-image object (SEG, RTSTRUCT...) from its SOP class or modality, else ``""``.
        instance: SOPInstanceUID (``""`` when absent).
        missing: the geometry tags the header lacks (GDCM then assumes a position, orientation or pixel size).
        pixel_id: the SimpleITK pixel type GDCM reads the slice as, after its own rescale (a slice with a
            fractional RescaleSlope reads as float, one with slope 1 as its stored integers).
        slope: RescaleSlope (0028,1053) as stored (``""`` when absent).
    """

    file: str
    size: tuple[int, int, int]
    spacing: tuple[float, float]
    origin: np.ndarray
    direction: np.ndarray
    image_type: str
    kind: str
    instance: str
    missing: tuple[str, ...] = ()
    pixel_id: int = -1
    slope: str = ""

    @property
    def name(self) -> str:
        return Path(self.file).name

    @property
    def is_localizer(self) -> bool:
        return "LOCALIZER" in (part.strip().upper() for part in self.image_type.split("\\"))


def read_slice_info(file: str) -> SliceInfo:
    """The header of one slice file.

    Raises:
        DamagedFileError: GDCM cannot read the header.
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(file)
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise DamagedFileError(
            f"expected a readable DICOM slice, but {file} cannot be read (it is damaged or cut short); restore it "
            "or move it out of the folder"
        ) from err

    def tag(key: str) -> str:
        return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""

    size = tuple(int(v) for v in reader.GetSize()) + (1,) * (3 - reader.GetDimension())
    return SliceInfo(
        file=file,
        size=size[:3],  # type: ignore[arg-type]
        spacing=(float(reader.GetSpacing()[0]), float(reader.GetSpacing()[1])),
        origin=np.asarray(reader.GetOrigin()[:3], dtype=np.float64),
        direction=np.reshape(reader.GetDirection(), (reader.GetDimension(),) * 2)[:3, :3].astype(np.float64),
        image_type=tag("0008|0008"),
        kind=non_image_kind(tag("0008|0016"), tag("0008|0060")) or "",
        instance=tag("0008|0018"),
        missing=tuple(name for key, name in _GEOMETRY_TAGS.items() if not tag(key)),
        pixel_id=int(reader.GetPixelID()),
        slope=tag("0028|1053"),
    )


def _check_rescale(slices: Sequence[SliceInfo], folder: Path) -> None:
    """Refuse a RescaleSlope of 0 or one that is not a finite number: no Hounsfield unit can be computed from it
    (GDCM reads a slope of 0 as if it were 1)."""
    bad = []
    for info in slices:
        if not info.slope:
            continue
        try:
            value = float(info.slope)
        except ValueError:
            value = math.nan
        if value == 0 or not math.isfinite(value):
            bad.append(info)
    if bad:
        names = _slice_names(bad)
        raise InputError(
            f"expected a non-zero, finite RescaleSlope (0028,1053) in every slice of the DICOM series of {folder}, "
            f"got {bad[0].slope!r} in {len(bad)} of {len(slices)} slices ({names}): the stored values cannot be "
            "turned into Hounsfield units"
        )


def _slice_names(slices: list[SliceInfo], shown: int = 5) -> str:
    """The first ``shown`` slices' file names for a message, ``" ..."`` after them when there are more."""
    return ", ".join(info.name for info in slices[:shown]) + (" ..." if len(slices) > shown else "")


def _drop_non_slices(slices: list[SliceInfo], folder: Path) -> list[SliceInfo]:
    skipped = [info for info in slices if info.kind or info.is_localizer]
    kept = [info for info in slices if not (info.kind or info.is_localizer)]
    if skipped:
        names = ", ".join(f"{info.name} ({info.kind or 'localizer'})" for info in skipped[:10])
        if not kept:
            raise InputError(
                f"expected CT slices in the DICOM series of {folder}, got only localizer or non-image objects: {names}"
            )
        logger.warning(
            "skipping %d DICOM files that are not slices of the volume in %s: %s", len(skipped), folder, names
        )
    multi = [info for info in kept if info.size[2] > 1]
    if multi:
        raise InputError(
            f"expected single-frame DICOM slices, got the multi-frame file {multi[0].file} ({multi[0].size[2]} "
            "frames): its frame positions cannot be checked; export the series as single-frame (classic) images"
        )
    unplaced = [info for info in kept if info.missing]
    if unplaced:
        names = _slice_names(unplaced)
        raise UnsupportedGeometryError(
            f"expected every slice of the DICOM series of {folder} to hold {', '.join(_GEOMETRY_TAGS.values())}, "
            f"got {len(unplaced)} of {len(kept)} slices without {' and '.join(unplaced[0].missing)} ({names}): "
            "where and how large they are in the patient is unknown"
        )
    _check_rescale(kept, folder)
    first = kept[0]
    for info in kept[1:]:
        if info.size != first.size or not np.allclose(info.spacing, first.spacing, rtol=0, atol=1e-4):
            raise InputError(
                f"expected slices of one size and pixel spacing in the DICOM series of {folder}, got {first.name} "
                f"({first.size[0]}x{first.size[1]}, {first.spacing} mm) and {info.name} ({info.size[0]}x"
                f"{info.size[1]}, {info.spacing} mm); pass one series"
            )
        if not np.allclose(info.direction, first.direction, rtol=0, atol=1e-4):
            raise UnsupportedGeometryError(
                f"expected slices of one orientation in the DICOM series of {folder}, got {first.name} and "
                f"{info.name} with different ImageOrientationPatient; pass one series"
            )
    return kept


def _same_file(a: SliceInfo, b: SliceInfo) -> bool:
    if a.instance and a.instance == b.instance and Path(a.file).stat().st_size == Path(b.file).stat().st_size:
        return True
    digests = [hashlib.sha256(Path(info.file).read_bytes()).digest() for info in (a, b)]
    return digests[0] == digests[1]


def _without_duplicates(slices: list[SliceInfo], positions: list[float], folder: Path) -> list[SliceInfo]:
    kept, kept_positions = [slices[0]], [positions[0]]
    for info, position in zip(slices[1:], positions[1:], strict=True):
        if abs(position - kept_positions[-1]) > DUPLICATE_MM:
            kept.append(info)
            kept_positions.append(position)
        elif _same_file(kept[-1], info):
            logger.warning("%s is a copy of %s (same position, same content): read once", info.file, kept[-1].file)
        else:
            raise UnsupportedGeometryError(
                f"expected one slice per position in the DICOM series of {folder}, got {kept[-1].name} and "
                f"{info.name} both at {position:.4g} mm along the slice normal, with different content; remove the "
                "duplicate slice or pass one series"
            )
    return kept


def _check_steps(slices: Sequence[SliceInfo], positions: np.ndarray, folder: Path) -> float:
    steps = np.diff(positions)
    step = float(np.median(steps))
    tolerance = max(0.01, STEP_TOLERANCE * step)
    worst = int(np.argmax(np.abs(steps - step)))
    if abs(steps[worst] - step) > tolerance:
        gaps = ", ".join(f"{gap:g}" for gap in np.unique(np.round(steps, 3)))
        missing = max(0, round(steps[worst] / step) - 1)
        hint = f" ({missing} missing slice{'s' if missing != 1 else ''})" if missing else ""
        raise UnsupportedGeometryError(
            f"expected evenly spaced slices in the DICOM series of {folder}, got steps of {gaps} mm along the slice "
            f"normal: {steps[worst]:.4g} mm between {slices[worst].name} and {slices[worst + 1].name}{hint} where "
            f"the others are {step:.4g} mm; restore the missing slices or pass a complete series (it is never read "
            "with a wrong spacing)"
        )
    return step


def _check_tilt(slices: Sequence[SliceInfo], normal: np.ndarray, folder: Path) -> None:
    offsets = np.stack([info.origin - slices[0].origin for info in slices])
    along = offsets @ normal
    sideways = np.linalg.norm(offsets - np.outer(along, normal), axis=1)
    worst = int(np.argmax(sideways))
    if sideways[worst] > max(1e-3, TILT_TOLERANCE_PIXELS * min(slices[0].spacing)):
        angle = math.degrees(math.atan2(sideways[worst], abs(along[worst])))
        raise UnsupportedGeometryError(
            f"expected slices stacked along their normal (the cross product of the row and column directions) in "
            f"the DICOM series of {folder}, got a stack tilted by {angle:.3g} degrees (gantry tilt): "
            f"{slices[worst].name} lies {sideways[worst]:.3g} mm sideways of the normal through {slices[0].name}; "
            "GASASegmenter does not place tilted stacks: resample the series onto an orthogonal grid first (e.g. "
            "3D Slicer's DICOM import with acquisition geometry regularization, or dcm2niix)"
        )


def stack_slices(slices: list[SliceInfo], folder: Path) -> tuple[list[str], float]:
    """The files of one regular stack, sorted along the slice normal, and the slice spacing (mm).

    Localizers and non-image objects are skipped (with a warning naming them); exact copies of a slice are
    read once.

    Raises:
        InputError: only localizers / non-image objects, a multi-frame file, slices of different sizes.
        UnsupportedGeometryError: different orientations, two different slices at one position, uneven
            spacing (a missing slice), or a tilted stack.
    """
    kept = _drop_non_slices(slices, folder)
    normal = kept[0].direction[:, 2]
    kept.sort(key=lambda info: float(info.origin @ normal))
    kept = _without_duplicates(kept, [float(info.origin @ normal) for info in kept], folder)
    if len(kept) < 2:
        return [info.file for info in kept], 0.0
    positions = np.asarray([float(info.origin @ normal) for info in kept])
    step = _check_steps(kept, positions, folder)
    _check_tilt(kept, normal, folder)
    return [info.file for info in kept], step
