"""Valid but odd inputs, built at test time, each with the exact geometry and voxels ``read_image`` must return.

Each builder writes one file or folder from a hand-written geometry (LPS) and known voxels, and returns
``(path, geometry, values_zyx)``: what is read must equal them (geometry to float32 rounding of the header).
"""

from __future__ import annotations

import gzip
import math
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from bad_inputs_dicom import RTSTRUCT_CLASS, SEG_CLASS, copy_slices, part10_object, rewrite_slices
from bad_inputs_itk import mha_header, nrrd_header
from bad_inputs_nifti import affine_of, ct_values, nifti_bytes, write
from odd_inputs_more import MORE_ODD_INPUTS

from GASACore.io import Geometry

Built = tuple[Path, Geometry, np.ndarray]

_C, _S = math.cos(math.radians(25)), math.sin(math.radians(25))
OBLIQUE = (_C, 0.0, _S, 0.0, 1.0, 0.0, -_S, 0.0, _C)
RAS = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
FLIPPED = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0)  # y and z swapped, one flipped: a coronal stack
LEFT_HANDED = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
_GEOMETRY = Geometry((5, 6, 7), (0.8, 0.9, 2.5), (120.5, -80.25, -300.0), RAS)


def _nifti(folder: Path, name: str, geometry: Geometry, values: np.ndarray, **kwargs: object) -> Built:
    affine = affine_of(geometry.spacing, geometry.origin, geometry.direction)
    return write(folder / name, nifti_bytes(values, affine, **kwargs)), geometry, values  # type: ignore[arg-type]


def _dtype_case(dtype: str) -> Callable[[Path, list[str]], Built]:
    def build(folder: Path, slices: list[str]) -> Built:
        values = (
            np.abs(ct_values((7, 6, 5), "int64")).astype(dtype)
            if dtype.startswith("u")
            else ct_values((7, 6, 5), dtype)
        )
        return _nifti(folder, f"{dtype}.nii.gz", _GEOMETRY, values)

    return build


def big_endian_nifti(folder: Path, slices: list[str]) -> Built:
    return _nifti(folder, "big.nii", _GEOMETRY, ct_values((7, 6, 5)), endian=">")


def big_endian_float_nifti2(folder: Path, slices: list[str]) -> Built:
    return _nifti(folder, "big2.nii.gz", _GEOMETRY, ct_values((7, 6, 5), "float64"), endian=">", version=2)


def scaled_nifti(folder: Path, slices: list[str]) -> Built:
    stored = ct_values((7, 6, 5)) + 1000
    path, geometry, _ = _nifti(
        folder, "scaled.nii.gz", _GEOMETRY, stored, changes={"scl_slope": 0.5, "scl_inter": -1024}
    )
    return path, geometry, stored.astype(np.float64) * 0.5 - 1024


def nan_slope_integers(folder: Path, slices: list[str]) -> Built:
    """scl_slope NaN (nibabel's "no scaling"): the stored integers are the voxels."""
    return _nifti(folder, "nan_slope.nii", _GEOMETRY, ct_values((7, 6, 5)), changes={"scl_slope": np.nan})


def oblique_nifti(folder: Path, slices: list[str]) -> Built:
    return _nifti(
        folder,
        "oblique.nii.gz",
        Geometry((5, 6, 7), (0.7, 0.7, 3.0), (10.0, 20.0, 30.0), OBLIQUE),
        ct_values((7, 6, 5)),
    )


def left_handed_nifti(folder: Path, slices: list[str]) -> Built:
    return _nifti(
        folder, "lefty.nii.gz", Geometry((5, 6, 7), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), LEFT_HANDED), ct_values((7, 6, 5))
    )


def qform_only_nifti(folder: Path, slices: list[str]) -> Built:
    geometry = Geometry((5, 6, 7), (0.7, 0.7, 3.0), (10.0, 20.0, 30.0), FLIPPED)
    return _nifti(folder, "qform.nii.gz", geometry, ct_values((7, 6, 5)), sform=False)


def sform_over_qform(folder: Path, slices: list[str]) -> Built:
    """sform and qform disagree: the sform is used, as nibabel and nnU-Net's NibabelIO use it."""
    path, geometry, values = _nifti(folder, "both.nii.gz", _GEOMETRY, ct_values((7, 6, 5)))
    content = bytearray(gzip.decompress(path.read_bytes()))
    from nibabel.nifti1 import Nifti1Header

    header = Nifti1Header(binaryblock=bytes(content[:348]), check=False)
    header.set_qform(np.diag([3.0, 3.0, 3.0, 1.0]), code=1)  # a different grid, to be ignored
    write(path, header.binaryblock + bytes(content[348:]))
    return path, geometry, values


def qform_zero_qfac(folder: Path, slices: list[str]) -> Built:
    """pixdim[0] (qfac) 0, as old writers leave it: +1 for ITK and for nibabel's loader alike."""
    geometry = Geometry((5, 6, 7), (0.7, 0.7, 3.0), (10.0, 20.0, 30.0), FLIPPED)
    path, _, values = _nifti(folder, "qfac0.nii.gz", geometry, ct_values((7, 6, 5)), sform=False)
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[76:80] = np.float32(0.0).tobytes()  # pixdim[0]
    return write(path, bytes(content)), geometry, values


def garbage_beyond_dim0(folder: Path, slices: list[str]) -> Built:
    """dim[0] = 3 and dim[4..7] holding leftovers: only the first dim[0] entries count."""
    path, geometry, values = _nifti(folder, "dims.nii.gz", _GEOMETRY, ct_values((7, 6, 5)))
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[48:56] = np.array([5, 6, 7, 8], "<i2").tobytes()  # dim[4..7]
    return write(path, bytes(content)), geometry, values


def four_d_one_volume(folder: Path, slices: list[str]) -> Built:
    return _nifti(folder, "one_volume.nii.gz", _GEOMETRY, ct_values((7, 6, 5)), dims=(5, 6, 7, 1))


def uncompressed_named_gz(folder: Path, slices: list[str]) -> Built:
    path, geometry, values = _nifti(folder, "plain.nii", _GEOMETRY, ct_values((7, 6, 5)))
    return Path(shutil.move(path, folder / "plain.nii.gz")), geometry, values


def multi_member_gzip(folder: Path, slices: list[str]) -> Built:
    """A bgzip-like .nii.gz of several gzip members."""
    path, geometry, values = _nifti(folder, "raw.nii", _GEOMETRY, ct_values((7, 6, 5)))
    content = path.read_bytes()
    members = b"".join(gzip.compress(content[start : start + 100], mtime=0) for start in range(0, len(content), 100))
    return write(folder / "members.nii.gz", members, compress=False), geometry, values


def with_extension_and_padding(folder: Path, slices: list[str]) -> Built:
    """A header extension (vox_offset 416) and 6 trailing bytes (less than a slice)."""
    values = ct_values((7, 6, 5))
    affine = affine_of(_GEOMETRY.spacing, _GEOMETRY.origin, _GEOMETRY.direction)
    content = nifti_bytes(values, affine, changes={"vox_offset": 416, "extents": 0}, extra=b"\0" * 6)
    extension = b"\x01\0\0\0" + np.array([64, 6], "<i4").tobytes() + b"x" * 56  # flag, then one 64-byte extension
    return write(folder / "extended.nii", content[:348] + extension + content[352:]), _GEOMETRY, values


def thin_volume(folder: Path, slices: list[str]) -> Built:
    return _nifti(
        folder, "thin.nii.gz", Geometry((2, 3, 2), (2.0, 2.0, 2.0), (1.0, 2.0, 3.0), RAS), ct_values((2, 3, 2))
    )


def _sitk(values: np.ndarray, geometry: Geometry) -> sitk.Image:
    image = sitk.GetImageFromArray(values)
    geometry.apply_to(image)
    return image


def mhd_data_in_subfolder(folder: Path, slices: list[str]) -> Built:
    values = ct_values((20, 30, 40))
    (folder / "data").mkdir()
    (folder / "data" / "ct.raw").write_bytes(values.tobytes())
    (folder / "ct.mhd").write_text(mha_header(data_file="data/ct.raw"))
    return (
        folder / "ct.mhd",
        Geometry((40, 30, 20), (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), np.eye(3).reshape(-1)),
        values,
    )


def mhd_pattern_of_slices(folder: Path, slices: list[str]) -> Built:
    values = ct_values((20, 30, 40))
    for index in range(20):
        (folder / f"slice{index + 1:03d}.raw").write_bytes(values[index].tobytes())
    (folder / "ct.mhd").write_text(mha_header(data_file="slice%03d.raw 1 20 1"))
    return (
        folder / "ct.mhd",
        Geometry((40, 30, 20), (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), np.eye(3).reshape(-1)),
        values,
    )


def mhd_compressed_without_size(folder: Path, slices: list[str]) -> Built:
    """A detached .zraw without CompressedDataSize: MetaIO takes the file's size (unlike inline data)."""
    values = ct_values((20, 30, 40))
    (folder / "ct.zraw").write_bytes(zlib.compress(values.tobytes()))
    (folder / "ct.mhd").write_text(mha_header(data_file="ct.zraw", extra="CompressedData = True"))
    return (
        folder / "ct.mhd",
        Geometry((40, 30, 20), (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), np.eye(3).reshape(-1)),
        values,
    )


def big_endian_mha(folder: Path, slices: list[str]) -> Built:
    values = ct_values((20, 30, 40))
    header = mha_header().replace("BinaryDataByteOrderMSB = False", "BinaryDataByteOrderMSB = True")
    (folder / "big.mha").write_bytes(header.encode() + values.astype(">i2").tobytes())
    return (
        folder / "big.mha",
        Geometry((40, 30, 20), (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), np.eye(3).reshape(-1)),
        values,
    )


def nrrd_detached_list(folder: Path, slices: list[str]) -> Built:
    values = ct_values((20, 30, 40))
    for half in range(2):
        (folder / f"half{half}.raw.gz").write_bytes(gzip.compress(values[half * 10 : half * 10 + 10].tobytes()))
    header = nrrd_header(encoding="gzip", extra="data file: LIST 3\nhalf0.raw.gz\nhalf1.raw.gz")
    (folder / "ct.nrrd").write_text(header)
    return (
        folder / "ct.nrrd",
        Geometry((40, 30, 20), (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), np.eye(3).reshape(-1)),
        values,
    )


def nrrd_oblique_big_endian(folder: Path, slices: list[str]) -> Built:
    values = ct_values((20, 30, 40), "float32")
    geometry = Geometry((40, 30, 20), (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), OBLIQUE)
    sitk.WriteImage(_sitk(values, geometry), str(folder / "oblique.nrrd"))
    text = (folder / "oblique.nrrd").read_bytes()
    split = text.index(b"\n\n") + 2
    header = text[:split].replace(b"endian: little", b"endian: big")
    (folder / "oblique.nrrd").write_bytes(header + values.astype(">f4").tobytes())
    return folder / "oblique.nrrd", geometry, values


def _dicom_reference(files: list[str]) -> tuple[Geometry, np.ndarray]:
    image = sitk.ReadImage(files)
    return Geometry.from_sitk(image), sitk.GetArrayFromImage(image)


def dicom_with_seg_and_rtstruct(folder: Path, slices: list[str]) -> Built:
    target = copy_slices(slices[:8], folder / "study")
    rewrite_slices(slices[:2], target, uid="1.2.826.0.1.3680043.8.498.7.5", tags={"0008|0016": SEG_CLASS}, prefix="seg")
    part10_object(target / "rtstruct.dcm", RTSTRUCT_CLASS, "RTSTRUCT")
    part10_object(target / "DICOMDIR", "1.2.840.10008.1.3.10", "")
    return (target, *_dicom_reference(slices[:8]))


def dicom_with_copies(folder: Path, slices: list[str]) -> Built:
    target = copy_slices(slices[:6], folder / "copied")
    for source in slices[2:4]:
        shutil.copy(source, target / f"{Path(source).name} (copy)")
    return (target, *_dicom_reference(slices[:6]))


def dicom_with_localizer_in_series(folder: Path, slices: list[str]) -> Built:
    target = copy_slices(slices[:6], folder / "series")
    reader = sitk.ImageFileReader()
    reader.SetFileName(slices[0])
    reader.ReadImageInformation()
    tags = {
        "0008|0008": "ORIGINAL\\PRIMARY\\LOCALIZER",
        "0008|0060": "CT",
        "0020|000d": reader.GetMetaData("0020|000d"),
    }
    rewrite_slices(slices[10:11], target, uid=reader.GetMetaData("0020|000e"), tags=tags, prefix="scout")
    return (target, *_dicom_reference(slices[:6]))


ODD_INPUTS: dict[str, Callable[[Path, list[str]], Built]] = {
    **{
        f"NIfTI {dtype}": _dtype_case(dtype)
        for dtype in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64")
    },
    "NIfTI big-endian int16": big_endian_nifti,
    "NIfTI-2 big-endian float64": big_endian_float_nifti2,
    "NIfTI scl_slope 0.5, scl_inter -1024": scaled_nifti,
    "NIfTI scl_slope NaN on integers": nan_slope_integers,
    "NIfTI oblique": oblique_nifti,
    "NIfTI left-handed": left_handed_nifti,
    "NIfTI qform only (coronal)": qform_only_nifti,
    "NIfTI sform over a different qform": sform_over_qform,
    "NIfTI 4D with one volume": four_d_one_volume,
    "NIfTI qform with qfac 0": qform_zero_qfac,
    "NIfTI garbage in dim[4..7] beyond dim[0] = 3": garbage_beyond_dim0,
    "NIfTI uncompressed named .nii.gz": uncompressed_named_gz,
    "NIfTI multi-member gzip": multi_member_gzip,
    "NIfTI extension and padding": with_extension_and_padding,
    "NIfTI 2 voxels thick": thin_volume,
    "MHD data in a sub-folder": mhd_data_in_subfolder,
    "MHD pattern of slice files": mhd_pattern_of_slices,
    "MHA big-endian": big_endian_mha,
    "MHD compressed data file without CompressedDataSize": mhd_compressed_without_size,
    "NRRD LIST of gzip files": nrrd_detached_list,
    "NRRD oblique big-endian float": nrrd_oblique_big_endian,
    "DICOM with SEG, RTSTRUCT, DICOMDIR": dicom_with_seg_and_rtstruct,
    "DICOM with copied slices": dicom_with_copies,
    "DICOM with a localizer in the series": dicom_with_localizer_in_series,
    **MORE_ODD_INPUTS,  # the second sweep
}
