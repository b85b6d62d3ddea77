"""Builders of DICOM folders for the bad-input set, made from the real 20-slice sample series (copied or rewritten)."""

from __future__ import annotations

import locale
import math
import shutil
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from GASACore.io import Geometry

# Tags copied from the real slices into rewritten ones (patient, study, modality, windowing).
_KEPT_TAGS = ("0010|0010", "0010|0020", "0008|0060", "0020|000d", "0008|0020", "0018|0050", "0028|1050", "0028|1051")
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
_UID = "1.2.826.0.1.3680043.8.498.7"


def copy_slices(slices: Sequence[str], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for source in slices:
        shutil.copy(source, folder)
    return folder


def rewrite_slices(
    slices: Sequence[str],
    folder: Path,
    *,
    uid: str = f"{_UID}.1",
    origins: Sequence[Sequence[float]] | None = None,
    tags: dict[str, str] | None = None,
    prefix: str = "slice",
    start: int = 1,
) -> Path:
    """Re-write real slices as a new series ``uid`` (voxels kept; origins and tags replaced where given)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, source_file in enumerate(slices):
        number = start + index
        source = sitk.ReadImage(source_file)
        image = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(source))
        image.CopyInformation(source)
        if origins is not None:
            image.SetOrigin([float(v) for v in origins[index]])
        for tag in _KEPT_TAGS:
            if source.HasMetaDataKey(tag):
                image.SetMetaData(tag, source.GetMetaData(tag))
        image.SetMetaData("0020|000e", uid)
        image.SetMetaData("0008|0018", f"{uid}.{number}")
        image.SetMetaData("0020|0013", str(number))
        for key, value in (tags or {}).items():
            image.SetMetaData(key, value)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / f"{prefix}_{number:03d}.dcm"))
        writer.Execute(image)
    return folder


def _element(group: int, element: int, vr: str, value: bytes | str) -> bytes:
    data = value.encode("ascii") if isinstance(value, str) else value
    if len(data) % 2:
        data += b"\0" if vr == "UI" else b" "
    if vr in ("OB", "SQ", "UN", "UT"):
        return struct.pack("<HH2sHI", group, element, vr.encode(), 0, len(data)) + data
    return struct.pack("<HH2sH", group, element, vr.encode(), len(data)) + data


def part10_object(path: Path, sop_class: str, modality: str) -> Path:
    """A minimal DICOM Part 10 object without pixel data (an RTSTRUCT, SR, KO... as GDCM sees one)."""
    instance = f"{_UID}.99.1"
    body = (
        _element(2, 1, "OB", b"\0\1")
        + _element(2, 2, "UI", sop_class)
        + _element(2, 3, "UI", instance)
        + _element(2, 0x10, "UI", "1.2.840.10008.1.2.1")
    )
    meta = _element(2, 0, "UL", struct.pack("<I", len(body))) + body
    dataset = b"".join(
        _element(group, element, vr, value)
        for group, element, vr, value in (
            (8, 0x16, "UI", sop_class),
            (8, 0x18, "UI", instance),
            (8, 0x60, "CS", modality),
            (0x20, 0x0D, "UI", f"{_UID}.98"),
            (0x20, 0x0E, "UI", f"{_UID}.97"),
        )
    )
    path.write_bytes(b"\0" * 128 + b"DICM" + meta + dataset)
    return path


def _positions(slices: Sequence[str]) -> np.ndarray:
    return np.asarray([sitk.ReadImage(name).GetOrigin() for name in slices], dtype=np.float64)


# --- bad folders: each builder makes one folder in `folder` from the real `slices` and returns it ---


def truncated_slice(folder: Path, slices: list[str]) -> Path:
    """Six uncompressed slices, one cut to a third (GDCM needs ~3 s per scan of a cut JPEG 2000 slice)."""
    target = rewrite_slices(slices[:6], folder / "series")
    victim = target / "slice_004.dcm"
    (target / "damaged.dcm").write_bytes(victim.read_bytes()[:175_000])
    victim.unlink()
    return target


def garbage_dicom_file(folder: Path, slices: list[str]) -> Path:
    target = copy_slices(slices[:5], folder / "series")
    (target / "extra.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 8)
    return target


def only_seg(folder: Path, slices: list[str]) -> Path:
    tags = {"0008|0016": SEG_CLASS, "0008|0060": "SEG"}
    return rewrite_slices(slices[:3], folder / "seg", tags=tags, prefix="seg")


def only_rtstruct(folder: Path, slices: list[str]) -> Path:
    (folder / "rt").mkdir()
    part10_object(folder / "rt" / "rtstruct.dcm", RTSTRUCT_CLASS, "RTSTRUCT")
    return folder / "rt"


def only_localizer(folder: Path, slices: list[str]) -> Path:
    tags = {"0008|0008": "ORIGINAL\\PRIMARY\\LOCALIZER"}
    return rewrite_slices(slices[:2], folder / "scout", tags=tags, prefix="scout")


def missing_slice(folder: Path, slices: list[str]) -> Path:
    return copy_slices(slices[:5] + slices[6:10], folder / "series")


def duplicate_position(folder: Path, slices: list[str]) -> Path:
    target = rewrite_slices(slices[:6], folder / "series")
    origins = _positions(slices[3:4])
    return rewrite_slices(slices[4:5], target, origins=origins, prefix="again", start=7)


def tilted(folder: Path, slices: list[str]) -> Path:
    origins = _positions(slices[:6])
    step = np.linalg.norm(origins[1] - origins[0])
    origins[:, 1] += np.arange(6) * step * math.tan(math.radians(15.0))
    return rewrite_slices(slices[:6], folder / "tilted", origins=origins)


def mixed_sizes(folder: Path, slices: list[str]) -> Path:
    target = rewrite_slices(slices[:5], folder / "series")
    source = sitk.ReadImage(slices[5])
    small = sitk.Resample(
        source,
        [256, 256, 1],
        sitk.Transform(),
        sitk.sitkLinear,
        source.GetOrigin(),
        [s * 2 for s in source.GetSpacing()[:2]] + [source.GetSpacing()[2]],
        source.GetDirection(),
    )
    sitk.WriteImage(sitk.Cast(small, sitk.sitkInt16), str(folder / "small.dcm"))
    origins, tags = _positions(slices[5:6]), {"0008|0060": "CT"}
    return rewrite_slices([str(folder / "small.dcm")], target, origins=origins, tags=tags, prefix="small", start=6)


def two_orientations(folder: Path, slices: list[str]) -> Path:
    target = rewrite_slices(slices[:5], folder / "series")
    source = sitk.ReadImage(slices[5])
    angle = math.radians(10)
    image = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(source))
    image.CopyInformation(source)
    image.SetDirection((math.cos(angle), -math.sin(angle), 0, math.sin(angle), math.cos(angle), 0, 0, 0, 1))
    sitk.WriteImage(image, str(folder / "turned.dcm"))
    return rewrite_slices([str(folder / "turned.dcm")], target, tags={"0008|0060": "CT"}, prefix="turned", start=6)


def whole_series(folder: Path, slices: list[str]) -> Path:
    return copy_slices(slices, folder / "series")


def single_slice(folder: Path, slices: list[str]) -> Path:
    return copy_slices(slices[:1], folder / "one")


def _without_element(folder: Path, group: int, element: int) -> Path:
    """Remove one data element from every file (explicit or implicit VR little endian, as SimpleITK writes them)."""
    tag = struct.pack("<HH", group, element)
    for path in folder.iterdir():
        content = path.read_bytes()
        at = content.find(tag, 132)
        if at < 0:
            continue
        if content[at + 4 : at + 6].isalpha():
            end = at + 8 + struct.unpack_from("<H", content, at + 6)[0]
        else:
            end = at + 8 + struct.unpack_from("<I", content, at + 4)[0]
        path.write_bytes(content[:at] + content[end:])
    return folder


def without_position(folder: Path, slices: list[str]) -> Path:
    """ImagePositionPatient removed: GDCM would put every slice at (0, 0, 0)."""
    return _without_element(rewrite_slices(slices[:4], folder / "series"), 0x0020, 0x0032)


def without_orientation(folder: Path, slices: list[str]) -> Path:
    """ImageOrientationPatient removed: GDCM would assume an axial identity orientation and segment it."""
    return _without_element(rewrite_slices(slices[:4], folder / "series"), 0x0020, 0x0037)


def export_tree(folder: Path, slices: list[str]) -> Path:
    """A PACS export tree: the series lies three levels below the folder passed."""
    copy_slices(slices[:3], folder / "export" / "patient" / "study" / "series")
    return folder / "export"


def without_pixel_spacing(folder: Path, slices: list[str]) -> Path:
    """PixelSpacing removed: GDCM would read 1 x 1 mm pixels (0.98 mm in the real series) and segment them."""
    return _without_element(rewrite_slices(slices[:4], folder / "series"), 0x0028, 0x0030)


def volume_series(
    folder: Path,
    values_zyx: np.ndarray,
    geometry: Geometry,
    *,
    tags: dict[str, str] | None = None,
    per_slice: Callable[[int], dict[str, str]] | None = None,
    name: Callable[[int], str] = lambda k: f"IM{k:04d}.dcm",
) -> Path:
    """A CT series of ``values_zyx`` (HU) on ``geometry``, one slice file per z: ITK stores HU through each slice's
    RescaleSlope/Intercept (``tags`` for all slices, ``per_slice(k)`` for slice k)."""
    with _locale_kept():  # ITK's DICOM writer leaves the process in the "C" locale after a RescaleSlope other than 1
        return _write_volume_series(folder, values_zyx, geometry, tags, per_slice, name)


@contextmanager
def _locale_kept() -> Iterator[None]:
    """Restore the process's locale afterwards (the C library's LC_ALL, which Python's text I/O defaults follow)."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_volume_series(
    folder: Path,
    values_zyx: np.ndarray,
    geometry: Geometry,
    tags: dict[str, str] | None,
    per_slice: Callable[[int], dict[str, str]] | None,
    name: Callable[[int], str],
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(values_zyx)
    geometry.apply_to(image)
    d = geometry.direction
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        header = {
            "0008|0060": "CT",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0008|0018": f"{_UID}.60.{k + 1}",
            "0020|000d": f"{_UID}.61",
            "0020|000e": f"{_UID}.62",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0037": "\\".join(f"{v:.6f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7])),
            "0028|0030": f"{geometry.spacing[1]:.6f}\\{geometry.spacing[0]:.6f}",
            "0028|1052": "0",
            "0028|1053": "1",
            **(tags or {}),
            **(per_slice(k) if per_slice else {}),
        }
        for key, value in header.items():
            piece.SetMetaData(key, value)
        writer.SetFileName(str(folder / name(k)))
        writer.Execute(piece)
    return folder


def replace_in_element(path: Path, group: int, element: int, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length) in the value of one data element of a slice file."""
    content = path.read_bytes()
    at = content.find(struct.pack("<HH", group, element), 132)
    index = content.index(old, at, at + 16)
    path.write_bytes(content[:index] + new + content[index + len(old) :])


def rescale_slope(folder: Path, written: str, stored: Callable[[int], bytes]) -> Path:
    """Overwrite the two-character RescaleSlope ``written`` of each slice k (sorted by name) with ``stored(k)``:
    values ITK's writer refuses to write (0, text, a fractional slope on integer voxels)."""
    for k, path in enumerate(sorted(folder.iterdir())):
        replace_in_element(path, 0x0028, 0x1053, written.encode().ljust(2), stored(k))
    return folder
