"""The second sweep's valid but odd inputs: scalings and dimensions NIfTI allows, NIfTI pairs, odd paths and names,
NRRD and MetaImage header variants, and DICOM series in every orientation, order, naming and rescale.

Each builder returns ``(path, geometry, values_zyx)`` as in :mod:`odd_inputs`. DICOM references come from ITK:
the geometry of the series as SimpleITK stacks it, the voxels of each file read alone (each with its own rescale).
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from bad_inputs_dicom import copy_slices, rescale_slope, volume_series
from bad_inputs_itk import mha_header
from bad_inputs_more import pair_bytes
from bad_inputs_nifti import affine_of, ct_values, nifti_bytes, write

from GASACore.io import Geometry

Built = tuple[Path, Geometry, np.ndarray]

_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
_RAS = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
_GEOMETRY = Geometry((5, 6, 7), (0.8, 0.9, 2.5), (120.5, -80.25, -300.0), _RAS)
_ITK_GEOMETRY = Geometry((40, 30, 20), (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), _IDENTITY)
_VALUES = ct_values((7, 6, 5))
_ITK_VALUES = ct_values((20, 30, 40))
_SMALL = Geometry((12, 10, 6), (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), _IDENTITY)


def _affine(geometry: Geometry = _GEOMETRY) -> np.ndarray:
    return affine_of(geometry.spacing, geometry.origin, geometry.direction)


def _nii(path: Path, values: np.ndarray, **kwargs: object) -> Path:
    return write(path, nifti_bytes(values, _affine(), **kwargs))  # type: ignore[arg-type]


# --- NIfTI ---


def slope_zero(folder: Path, slices: list[str]) -> Built:
    """scl_slope 0: the NIfTI standard's "no scaling" (scl_inter is then ignored too)."""
    return _nii(folder / "slope0.nii.gz", _VALUES, changes={"scl_slope": 0.0, "scl_inter": 5.0}), _GEOMETRY, _VALUES


def int32_scaled(folder: Path, slices: list[str]) -> Built:
    stored = ((_VALUES.astype(np.int32) + 1024) // 2).astype(np.int32)
    path = _nii(folder / "int32.nii.gz", stored, changes={"scl_slope": 2.0, "scl_inter": -1024.0})
    return path, _GEOMETRY, stored * 2.0 - 1024


def negative_slope(folder: Path, slices: list[str]) -> Built:
    return _nii(folder / "negative.nii.gz", -_VALUES, changes={"scl_slope": -1.0}), _GEOMETRY, _VALUES


def five_dims_of_one(folder: Path, slices: list[str]) -> Built:
    return _nii(folder / "dim5.nii.gz", _VALUES, dims=(5, 6, 7, 1, 1)), _GEOMETRY, _VALUES


def nifti_pair(folder: Path, slices: list[str]) -> Built:
    header, data = pair_bytes(_VALUES, _affine())
    write(folder / "pair.img", data)
    return write(folder / "pair.hdr", header), _GEOMETRY, _VALUES


def nifti_pair_gzipped_img(folder: Path, slices: list[str]) -> Built:
    header, data = pair_bytes(_VALUES, _affine())
    (folder / "pair.img.gz").write_bytes(gzip.compress(data, mtime=0))
    return write(folder / "pair.hdr", header), _GEOMETRY, _VALUES


def odd_path(folder: Path, slices: list[str]) -> Built:
    (folder / "Patient Müller 東京").mkdir()
    return _nii(folder / "Patient Müller 東京" / "scan é 1.nii.gz", _VALUES), _GEOMETRY, _VALUES


def symlinked(folder: Path, slices: list[str]) -> Built:
    (folder / "store").mkdir()
    os.symlink(_nii(folder / "store" / "ct.nii.gz", _VALUES), folder / "link.nii.gz")
    return folder / "link.nii.gz", _GEOMETRY, _VALUES


def upper_case_name(folder: Path, slices: list[str]) -> Built:
    return _nii(folder / "CT.NII.GZ", _VALUES), _GEOMETRY, _VALUES


# --- NRRD and MetaImage ---


def _nrrd(folder: Path, name: str, lines: str, data: bytes = _ITK_VALUES.tobytes()) -> Path:
    header = "NRRD0004\ntype: short\ndimension: 3\nsizes: 40 30 20\nendian: little\n" + lines.strip() + "\n"
    (folder / name).write_bytes(header.encode() + (b"\n" + data if "data file" not in lines else b""))
    return folder / name


def nrrd_ras(folder: Path, slices: list[str]) -> Built:
    """space RAS: ITK turns it into LPS (x and y negated)."""
    lines = "encoding: raw\nspace: right-anterior-superior\nspace directions: (0.8,0,0) (0,0.8,0) (0,0,2.5)\n"
    path = _nrrd(folder, "ras.nrrd", lines + "space origin: (10,-20,30)")
    return path, Geometry((40, 30, 20), (0.8, 0.8, 2.5), (-10.0, 20.0, 30.0), _RAS), _ITK_VALUES


def nrrd_spacings_only(folder: Path, slices: list[str]) -> Built:
    path = _nrrd(folder, "spacings.nrrd", "encoding: raw\nspacings: 0.8 0.8 2.5")
    return path, Geometry((40, 30, 20), (0.8, 0.8, 2.5), (0.0, 0.0, 0.0), _IDENTITY), _ITK_VALUES


def nrrd_origin_only(folder: Path, slices: list[str]) -> Built:
    """A space origin without space directions: ITK takes 1 mm voxels along the LPS axes."""
    path = _nrrd(folder, "origin.nrrd", "encoding: raw\nspace: left-posterior-superior\nspace origin: (10,-20,30)")
    return path, Geometry((40, 30, 20), (1.0, 1.0, 1.0), (10.0, -20.0, 30.0), _IDENTITY), _ITK_VALUES


def nhdr_gzip(folder: Path, slices: list[str]) -> Built:
    (folder / "ct.raw.gz").write_bytes(gzip.compress(_ITK_VALUES.tobytes(), mtime=0))
    lines = "encoding: gzip\nspace: left-posterior-superior\nspace directions: (0.8,0,0) (0,0.8,0) (0,0,2.5)\n"
    path = _nrrd(folder, "ct.nhdr", lines + "space origin: (10,-20,30)\ndata file: ct.raw.gz")
    return path, _ITK_GEOMETRY, _ITK_VALUES


def nrrd_ascii(folder: Path, slices: list[str]) -> Built:
    text = " ".join(map(str, _ITK_VALUES.reshape(-1).tolist())).encode() + b"\n"
    lines = "encoding: ascii\nspace: left-posterior-superior\nspace directions: (0.8,0,0) (0,0.8,0) (0,0,2.5)\n"
    return _nrrd(folder, "text.nrrd", lines + "space origin: (10,-20,30)", text), _ITK_GEOMETRY, _ITK_VALUES


def nrrd_4d_of_one(folder: Path, slices: list[str]) -> Built:
    header = (
        "NRRD0004\ntype: short\ndimension: 4\nsizes: 40 30 20 1\nendian: little\nencoding: raw\n"
        "space: left-posterior-superior\nspace directions: (0.8,0,0) (0,0.8,0) (0,0,2.5) none\n"
        "kinds: domain domain domain list\nspace origin: (10,-20,30)\n\n"
    )
    (folder / "one.nrrd").write_bytes(header.encode() + _ITK_VALUES.tobytes())
    return folder / "one.nrrd", _ITK_GEOMETRY, _ITK_VALUES


def mha_rai(folder: Path, slices: list[str]) -> Built:
    """AnatomicalOrientation is a label: the TransformMatrix places the image."""
    header = mha_header(extra="AnatomicalOrientation = RAI")
    (folder / "rai.mha").write_bytes(header.encode() + _ITK_VALUES.tobytes())
    return folder / "rai.mha", _ITK_GEOMETRY, _ITK_VALUES


def mhd_list_of_slices(folder: Path, slices: list[str]) -> Built:
    for index in range(20):
        (folder / f"s{index:03d}.raw").write_bytes(_ITK_VALUES[index].tobytes())
    names = "".join(f"s{index:03d}.raw\n" for index in range(20))
    (folder / "ct.mhd").write_text(mha_header(data_file="LIST 2D") + names)
    return folder / "ct.mhd", _ITK_GEOMETRY, _ITK_VALUES


def mha_4d_of_one(folder: Path, slices: list[str]) -> Built:
    header = mha_header(
        dims="40 30 20 1", spacing="0.8 0.8 2.5 1", extra="TransformMatrix = 1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1"
    ).replace("Offset = 10 -20 30", "Offset = 10 -20 30 0")
    (folder / "one.mha").write_bytes(header.encode() + _ITK_VALUES.tobytes())
    return folder / "one.mha", _ITK_GEOMETRY, _ITK_VALUES


def mha_double(folder: Path, slices: list[str]) -> Built:
    header = mha_header().replace("MET_SHORT", "MET_DOUBLE")
    (folder / "double.mha").write_bytes(header.encode() + _ITK_VALUES.astype(np.float64).tobytes())
    return folder / "double.mha", _ITK_GEOMETRY, _ITK_VALUES


# --- DICOM ---


def _reference(folder: Path) -> tuple[Path, Geometry, np.ndarray]:
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))
    geometry = Geometry.from_sitk(sitk.ReadImage(files))
    values = np.stack([sitk.GetArrayFromImage(sitk.ReadImage(name))[0].astype(np.float64) for name in files])
    return folder, geometry, values


def _series(folder: Path, direction: tuple[float, ...] = _IDENTITY, **kwargs: object) -> Built:
    geometry = Geometry(_SMALL.size, _SMALL.spacing, _SMALL.origin, direction)
    return _reference(volume_series(folder, ct_values((6, 10, 12)), geometry, **kwargs))  # type: ignore[arg-type]


def _rotation() -> tuple[float, ...]:
    return tuple(sitk.VersorTransform((0.2, 0.5, 0.8), math.radians(20)).GetMatrix())


def dicom_shuffled_names(folder: Path, slices: list[str]) -> Built:
    """Files named without .dcm, in an order unrelated to their positions."""
    target = folder / "export"
    target.mkdir()
    order = np.random.default_rng(1).permutation(6)
    for index, source in enumerate(slices[:6]):
        shutil.copy(source, target / f"x{order[index] * 7919 % 1000:03x}")
    return _reference(target)


def dicom_with_other_files(folder: Path, slices: list[str]) -> Built:
    target = copy_slices(slices[:5], folder / "series")
    (target / "readme.txt").write_text("exported by the PACS")
    (target / "Thumbs.db").write_bytes(bytes(100))
    (target / ".DS_Store").write_bytes(b"\1" * 50)
    return _reference(target)


def dicom_without_preamble(folder: Path, slices: list[str]) -> Built:
    """Slices as bare data sets (no 128-byte preamble, no File Meta Information), as some old archives hold them."""
    source = volume_series(folder / "part10", ct_values((6, 10, 12)), _SMALL)
    (folder / "bare").mkdir()
    for path in sorted(source.iterdir()):
        content = path.read_bytes()
        meta_length = struct.unpack_from("<I", content, 132 + 8)[0]
        (folder / "bare" / path.name).write_bytes(content[132 + 12 + meta_length :])
    _, geometry, values = _reference(source)
    shutil.rmtree(source)
    return folder / "bare", geometry, values


def dicom_mixed_stored_types(folder: Path, slices: list[str]) -> Built:
    """The first slice rescaled to integers, the others to fractions: ITK would truncate them to the first's type."""
    series = volume_series(folder / "mixed", ct_values((6, 10, 12)) // 2 * 2, _SMALL, tags={"0028|1053": "2"})
    return _reference(rescale_slope(series, "2", lambda k: b"1 " if k == 0 else b".5"))


ODD_DICOM: dict[str, Callable[[Path, list[str]], Built]] = {
    "DICOM sagittal": lambda f, s: _series(f / "sagittal", (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)),
    "DICOM coronal": lambda f, s: _series(f / "coronal", (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0)),
    "DICOM oblique": lambda f, s: _series(f / "oblique", _rotation()),
    "DICOM slices stacked downwards": lambda f, s: _series(f / "down", (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)),
    "DICOM stored unsigned with intercept -1024": lambda f, s: _series(f / "u16", tags={"0028|1052": "-1024"}),
    "DICOM RescaleSlope per slice": lambda f, s: _series(
        f / "slopes", per_slice=lambda k: {"0028|1053": "1" if k % 2 else "2"}
    ),
    "DICOM RescaleIntercept per slice": lambda f, s: _series(
        f / "intercepts", per_slice=lambda k: {"0028|1052": "0" if k % 2 else "-1024"}
    ),
    "DICOM files without .dcm, shuffled": dicom_shuffled_names,
    "DICOM with readme, Thumbs.db, .DS_Store": dicom_with_other_files,
    "DICOM without preamble": dicom_without_preamble,
    "DICOM slices rescaled to different types": dicom_mixed_stored_types,
}

MORE_ODD_INPUTS: dict[str, Callable[[Path, list[str]], Built]] = {
    "NIfTI scl_slope 0": slope_zero,
    "NIfTI int32 scaled by 2, -1024": int32_scaled,
    "NIfTI negative scl_slope": negative_slope,
    "NIfTI dim[0] = 5 with trailing 1s": five_dims_of_one,
    "NIfTI pair .hdr + .img": nifti_pair,
    "NIfTI pair .hdr + .img.gz": nifti_pair_gzipped_img,
    "NIfTI in a path with spaces and non-ASCII": odd_path,
    "NIfTI through a symbolic link": symlinked,
    "NIfTI named .NII.GZ": upper_case_name,
    "NRRD space RAS": nrrd_ras,
    "NRRD spacings, no space": nrrd_spacings_only,
    "NRRD space origin without directions": nrrd_origin_only,
    "NHDR with gzip data file": nhdr_gzip,
    "NRRD ascii": nrrd_ascii,
    "NRRD 4D of one": nrrd_4d_of_one,
    "MHA AnatomicalOrientation RAI": mha_rai,
    "MHD LIST of 2D slices": mhd_list_of_slices,
    "MHA NDims 4 of one": mha_4d_of_one,
    "MHA MET_DOUBLE": mha_double,
    **ODD_DICOM,
}
