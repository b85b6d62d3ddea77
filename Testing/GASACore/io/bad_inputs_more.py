"""Builders of the second sweep's bad inputs (all formats): headers MetaIO or teem misread, vector and 2D images
in NRRD / MetaImage, NIfTI pairs and Analyze headers, unusable DICOM rescales and DICOM folders of non-images.

Each builder makes one file or folder in ``folder`` (DICOM ones from nothing, with ITK) and returns its path.
"""

from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np
from bad_inputs_dicom import part10_object, rescale_slope, volume_series
from bad_inputs_itk import mha_header
from bad_inputs_nifti import ct_values, nifti_bytes, write
from nibabel.analyze import AnalyzeHeader
from nibabel.nifti1 import Nifti1Header

from GASACore.io import Geometry

_VALUES = ct_values((20, 30, 40))
_DATA = _VALUES.tobytes()
_SMALL = Geometry((12, 10, 6), (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def _write(path: Path, header: str, data: bytes = b"") -> Path:
    path.write_bytes(header.encode("ascii") + data)
    return path


def _nrrd(lines: str) -> str:
    return "NRRD0004\n" + lines.strip() + "\n\n"


# --- NRRD and MetaImage ---


def nrrd_rgb(folder: Path) -> Path:
    header = _nrrd(
        "type: unsigned char\ndimension: 4\nsizes: 3 20 20 10\nkinds: RGB-color domain domain domain\n"
        "space: left-posterior-superior\nspace directions: none (1,0,0) (0,1,0) (0,0,1)\nencoding: raw"
    )
    return _write(folder / "rgb.nrrd", header, bytes(3 * 20 * 20 * 10))


def nrrd_vector(folder: Path) -> Path:
    header = _nrrd(
        "type: float\ndimension: 4\nsizes: 3 20 20 10\nkinds: 3-vector domain domain domain\nendian: little\n"
        "space: left-posterior-superior\nspace directions: none (1,0,0) (0,1,0) (0,0,1)\nencoding: raw"
    )
    return _write(folder / "vector.nrrd", header, bytes(4 * 3 * 20 * 20 * 10))


def mha_three_channels(folder: Path) -> Path:
    header = mha_header(dims="20 20 10", spacing="1 1 1", extra="ElementNumberOfChannels = 3")
    return _write(folder / "channels.mha", header, bytes(2 * 3 * 4000))


def mha_string_type(folder: Path) -> Path:
    return _write(folder / "string.mha", mha_header().replace("MET_SHORT", "MET_STRING"), _DATA)


def nrrd_2d(folder: Path) -> Path:
    return _write(
        folder / "flat.nrrd",
        _nrrd("type: short\ndimension: 2\nsizes: 40 30\nendian: little\nencoding: raw"),
        _DATA[:2400],
    )


def mha_one_slice(folder: Path) -> Path:
    return _write(folder / "one.mha", mha_header(dims="40 30 1"), _DATA[:2400])


def nrrd_one_row(folder: Path) -> Path:
    header = _nrrd("type: short\ndimension: 3\nsizes: 40 1 20\nendian: little\nencoding: raw")
    return _write(folder / "row.nrrd", header, _DATA[:1600])


def nrrd_negative_spacings(folder: Path) -> Path:
    header = _nrrd("type: short\ndimension: 3\nsizes: 40 30 20\nspacings: 0.8 -0.8 2.5\nendian: little\nencoding: raw")
    return _write(folder / "negative.nrrd", header, _DATA)


def mha_negative_spacing(folder: Path) -> Path:
    return _write(folder / "negative.mha", mha_header(spacing="0.8 -0.8 2.5"), _DATA)


def mha_offset_nan(folder: Path) -> Path:
    """MetaIO reads 'nan' as 0: the image would be placed 20 mm away without a word."""
    return _write(folder / "offset_nan.mha", mha_header().replace("Offset = 10 -20 30", "Offset = 10 nan 30"), _DATA)


def mha_position_text(folder: Path) -> Path:
    header = mha_header().replace("Offset = 10 -20 30", "Position = 10 abc 30")
    return _write(folder / "position_text.mha", header, _DATA)


def mha_matrix_nan(folder: Path) -> Path:
    return _write(folder / "matrix_nan.mha", mha_header(extra="TransformMatrix = 1 0 0 0 nan 0 0 0 1"), _DATA)


def mha_matrix_short(folder: Path) -> Path:
    return _write(folder / "matrix_short.mha", mha_header(extra="TransformMatrix = 1 0 0 0 1 0"), _DATA)


def nrrd_origin_nan(folder: Path) -> Path:
    header = _nrrd(
        "type: short\ndimension: 3\nsizes: 40 30 20\nendian: little\nencoding: raw\nspace: left-posterior-superior\n"
        "space directions: (0.8,0,0) (0,0.8,0) (0,0,2.5)\nspace origin: (10,nan,30)"
    )
    return _write(folder / "origin_nan.nrrd", header, _DATA)


def nrrd_without_endian(folder: Path) -> Path:
    return _write(folder / "no_endian.nrrd", _nrrd("type: short\ndimension: 3\nsizes: 40 30 20\nencoding: raw"), _DATA)


def nrrd_bzip2_complete(folder: Path) -> Path:
    header = _nrrd("type: short\ndimension: 3\nsizes: 40 30 20\nendian: little\nencoding: bzip2")
    return _write(folder / "bzip2.nrrd", header, bz2.compress(_DATA))


def empty_nrrd(folder: Path) -> Path:
    return _write(folder / "empty.nrrd", "")


def empty_mha(folder: Path) -> Path:
    return _write(folder / "empty.mha", "")


# --- NIfTI ---


def float128_nii(folder: Path) -> Path:
    content = nifti_bytes(np.zeros((4, 5, 6), np.float64))
    header = Nifti1Header(binaryblock=content[:348], check=False)
    header["datatype"], header["bitpix"] = 1536, 128  # NIFTI_TYPE_FLOAT128
    return write(folder / "float128.nii", header.binaryblock + content[348:352] + bytes(16 * 120))


def micro_spacing_nii(folder: Path) -> Path:
    return write(folder / "micro.nii.gz", nifti_bytes(ct_values((7, 6, 5)), np.diag([1e-6, 1e-6, 1e-6, 1.0])))


def zip_as_nii_gz(folder: Path) -> Path:
    return write(folder / "scan.nii.gz", b"PK\x03\x04" + bytes(200), compress=False)


def pair_bytes(values_zyx: np.ndarray, affine: np.ndarray | None = None) -> tuple[bytes, bytes]:
    """A NIfTI-1 pair: the 348-byte header (magic 'ni1', vox_offset 0) and the .img voxel bytes."""
    content = nifti_bytes(values_zyx, affine, changes={"magic": b"ni1", "vox_offset": 0})
    return content[:348], content[352:]


def analyze_header(folder: Path) -> Path:
    header = AnalyzeHeader()
    header.set_data_dtype(np.int16)
    header.set_data_shape((5, 6, 7))
    header.set_zooms((1.0, 1.0, 2.0))
    (folder / "old.img").write_bytes(ct_values((7, 6, 5)).tobytes())
    return write(folder / "old.hdr", header.binaryblock)


def pair_without_img(folder: Path) -> Path:
    return write(folder / "lone.hdr", pair_bytes(ct_values((7, 6, 5)))[0])


def pair_img_cut_short(folder: Path) -> Path:
    header, data = pair_bytes(ct_values((20, 30, 40)))
    write(folder / "cut.img", data[:30000])
    return write(folder / "cut.hdr", header)


# --- DICOM ---


def _series(folder: Path, **kwargs: object) -> Path:
    return volume_series(folder, ct_values((6, 10, 12)), _SMALL, **kwargs)  # type: ignore[arg-type]


def dicom_slope_zero(folder: Path, slices: list[str]) -> Path:
    """RescaleSlope 0 (GDCM then reads the stored values as if the slope were 1)."""
    series = _series(folder / "zero", tags={"0028|1053": "2", "0028|1052": "-1024"})
    return rescale_slope(series, "2", lambda k: b"0 ")


def dicom_slope_text(folder: Path, slices: list[str]) -> Path:
    series = _series(folder / "text", tags={"0028|1053": "2", "0028|1052": "0"})
    return rescale_slope(series, "2", lambda k: b"ab")


def dicom_only(kind: str) -> object:
    sop_class, modality = {
        "pdf": ("1.2.840.10008.5.1.4.1.1.104.1", "DOC"),
        "sr": ("1.2.840.10008.5.1.4.1.1.88.22", "SR"),
        "pr": ("1.2.840.10008.5.1.4.1.1.11.1", "PR"),
    }[kind]

    def build(folder: Path, slices: list[str]) -> Path:
        (folder / kind).mkdir()
        part10_object(folder / kind / f"{kind}.dcm", sop_class, modality)
        return folder / kind

    return build


def dicom_without_pixel_data(folder: Path, slices: list[str]) -> Path:
    """Every slice cut before its PixelData element: headers only, no image series for GDCM."""
    series = _series(folder / "headers")
    for path in series.iterdir():
        content = path.read_bytes()
        path.write_bytes(content[: content.rfind(b"\xe0\x7f\x10\x00")])
    return series


def dicom_one_series_per_slice(folder: Path, slices: list[str]) -> Path:
    """Every file with a SeriesInstanceUID of its own: GDCM sees 6 one-slice series."""
    return _series(folder / "each", per_slice=lambda k: {"0020|000e": f"1.2.826.0.1.3680043.8.498.7.80.{k}"})
