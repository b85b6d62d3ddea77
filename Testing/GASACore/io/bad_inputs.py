"""The bad-input set: every damaged, lying or unsupported input, built at test time, with its exact refusal.

Each :class:`BadInput` builds one file or folder in a temporary folder (from nothing, or from the real DICOM
sample series) and names the error class ``read_image`` must raise and a regular expression its message must
match. ``bomb`` marks the inputs whose peak memory is measured in a subprocess (headers and gzip streams that
claim or expand to gigabytes). Nothing is stored in the repository.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bad_inputs_dicom as dicom
import bad_inputs_itk as itk
import bad_inputs_more as more
import bad_inputs_nifti as nifti

from GASACore.errors import (
    DamagedFileError,
    ImageTooLargeError,
    InputError,
    UnsafePathError,
    UnsupportedGeometryError,
)

CUT = r"the file is cut short or its header is damaged"
OUTSIDE = r"outside it; GASASegmenter reads no file outside the image's folder"
SHEAR = r"GASASegmenter needs an orthonormal direction: resample the image"


@dataclass(frozen=True)
class BadInput:
    """One bad input: how to build it and how ``read_image`` must refuse it.

    Attributes:
        build: makes the input inside the given folder (from the real DICOM slices when it needs them) and
            returns the path to read.
        error: the exact class of the error.
        message: a regular expression the message must match (``re.search``).
        env: environment variables set while reading (e.g. a lower memory limit).
        bomb: the input claims or expands to gigabytes: its peak memory is measured too.
    """

    build: Callable[[Path, list[str]], Path]
    error: type[InputError]
    message: str
    env: dict[str, str] = field(default_factory=dict)
    bomb: bool = False


def _file(builder: Callable[[Path], Path]) -> Callable[[Path, list[str]], Path]:
    return lambda folder, slices: builder(folder)


def _case(builder: Callable[[Path], Path], error: type[InputError], message: str, **kwargs: object) -> BadInput:
    return BadInput(_file(builder), error, message, **kwargs)  # type: ignore[arg-type]


NIFTI_CASES = {
    "nii cut short": _case(
        nifti.truncated_nii, DamagedFileError, rf"expected 48000 bytes .* found 31000 bytes .*{CUT}"
    ),
    "nii.gz cut short": _case(
        nifti.truncated_nii_gz, DamagedFileError, r"40x30x20 int16 = 48.0 KB\), found \d+ bytes .*gzip stream ended"
    ),
    "nii.gz failing its CRC": _case(
        nifti.corrupt_crc_nii_gz, DamagedFileError, r"the gzip data is corrupt \(.*incorrect data check\)"
    ),
    "nii header cut short": _case(
        nifti.header_cut_nii, DamagedFileError, r"348-byte NIfTI-1 header .* found 200 bytes"
    ),
    "empty .nii.gz": _case(nifti.empty_nii_gz, InputError, r"expected a NIfTI-1 or NIfTI-2 image .* an empty file"),
    "PNG named .nii.gz": _case(nifti.png_as_nii_gz, InputError, r"NIfTI-1 or NIfTI-2 image .*, got a PNG image"),
    "text named .nii": _case(nifti.text_as_nii, InputError, r"NIfTI-1 or NIfTI-2 image .*, got text \('Patient scan"),
    "gzipped text named .nii.gz": _case(nifti.gzipped_text_as_nii_gz, InputError, r"got text \('just some text"),
    "NRRD named .nii.gz": _case(nifti.nrrd_as_nii_gz, InputError, r"got a NRRD image \(name it \.nrrd\)"),
    "NIfTI pair header as .nii": _case(nifti.pair_header_as_nii, InputError, r"a NIfTI header for a separate \.img"),
    "NIfTI-2 magic in a NIfTI-1 header": _case(
        nifti.nifti2_magic_in_nifti1_nii, InputError, r"magic 'n\+1' after a 348-byte header.*other NIfTI version"
    ),
    "NaN float32 voxels": _case(
        nifti.nan_float32_nii,
        InputError,
        r"got 3 NaN or infinite voxels of 210 .*: 3 NaN, 0 infinite, the first "
        r"at voxel index \(x, y, z\) = \(6, 0, 0\)",
    ),
    "inf float64 voxels": _case(nifti.inf_float64_nii, InputError, r"2 NaN or infinite .*: 0 NaN, 2 infinite"),
    "float64 beyond float32": _case(nifti.float64_overflow_nii, InputError, r"0 NaN, 1 infinite, .* = \(4, 3, 2\)"),
    "NaN voxels with NaN scl_slope": _case(nifti.nan_slope_nii, InputError, r"got 1000 NaN or infinite voxels of 6000"),
    "scl_slope overflowing": _case(
        nifti.slope_overflow_nii, InputError, r"209 NaN or infinite .* after scaling by 1e\+38 and adding 0"
    ),
    "all voxels infinite": _case(nifti.all_inf_nii, InputError, r"got 120 NaN or infinite voxels of 120"),
    "infinite scl_inter": _case(nifti.inf_intercept_nii, InputError, r"expected a usable scaling .* intercept inf"),
    "header bomb .nii": _case(
        nifti.header_bomb_nii,
        DamagedFileError,
        r"claims 2048x2048x2048 int16 = 17.2 GB\), found 2080 bytes \(2.1 KB\) in the file",
        bomb=True,
    ),
    "header bomb .nii.gz": _case(
        nifti.header_bomb_nii_gz,
        DamagedFileError,
        r"17.2 GB\), found \d+ bytes .* at most .* expand 1032-fold",
        bomb=True,
    ),
    "gzip bomb (small claim)": _case(
        nifti.gzip_bomb_small_claim, DamagedFileError, r"found at least one slice \(8192 bytes\) more", bomb=True
    ),
    "gzip bomb (large claim)": _case(
        nifti.gzip_bomb_large_claim,
        ImageTooLargeError,
        r"claims 2048x2048x2048 uint8 voxels = 8.6 GB stored, 34.4 GB as float32, which exceeds the limit of "
        r"1.0 GB; set GASA_MAX_IMAGE_BYTES to raise it",
        env={"GASA_MAX_IMAGE_BYTES": "1GB"},
        bomb=True,
    ),
    "gzip stream ending early (268 MB claim)": _case(
        nifti.gzip_ending_early_large_claim,
        DamagedFileError,
        r"512x512x512 int16 = 268.4 MB\), found 300000 bytes \(300.0 KB\) before the gzip stream ended: ",
        bomb=True,
    ),
    "over GASA_MAX_IMAGE_BYTES": _case(
        nifti.over_limit_nii,
        ImageTooLargeError,
        r"= 120.0 KB stored, 240.0 KB as float32, which exceeds the limit of 100.0 KB",
        env={"GASA_MAX_IMAGE_BYTES": "100KB"},
    ),
    "2D NIfTI": _case(nifti.image_2d_nii, InputError, r"expected a 3D volume, got a 2D image of size \(4, 5\)"),
    "4D NIfTI (2 time points)": _case(nifti.image_4d_nii, InputError, r"a 4D image of size \(4, 5, 3, 2\) .* size 1"),
    "5D NIfTI (vector)": _case(nifti.vector_5d_nii, InputError, r"a 5D image of size \(4, 5, 3, 1, 3\)"),
    "single-slice NIfTI": _case(nifti.single_slice_nii, InputError, r"at least 2 voxels .* got size \(4, 5, 1\)"),
    "zero-size NIfTI axis": _case(nifti.zero_axis_nii, InputError, r"voxels along every axis, got size \(4, 5, 0\)"),
    "negative NIfTI axis": _case(
        nifti.negative_axis_nii, InputError, r"voxels along every axis, got size \(4, -5, 3\)"
    ),
    "sheared sform": _case(
        nifti.sheared_nii,
        UnsupportedGeometryError,
        rf"sform affine \(RAS\) of .* holds a shear of 26.6 degrees: its x and z voxel axes meet at 63.43 degrees .*"
        rf"\[\[1, 0, 0.5, 0\], .*{SHEAR}",
    ),
    "zero spacing": _case(
        nifti.zero_spacing_nii, UnsupportedGeometryError, r"spacing between 0.001 and 1000 mm .* got \(1.0, 0.0, 1.0\)"
    ),
    "spacing 1e9 mm": _case(nifti.absurd_spacing_nii, UnsupportedGeometryError, r"got \(1.0, 1.0, 1000000000.0\) mm"),
    "NaN in the sform": _case(nifti.nan_affine_nii, UnsupportedGeometryError, r"affine of finite numbers, got"),
    "complex voxels": _case(nifti.complex_nii, InputError, r"expected real-valued voxels, got complex"),
    "RGB voxels": _case(nifti.rgb_nii, InputError, r"expected a scalar image .* got 3 components per voxel"),
    "unknown datatype": _case(nifti.unknown_datatype_nii, InputError, r"datatype code 999"),
    "vox_offset inside the header": _case(nifti.low_offset_nii, DamagedFileError, r"vox_offset >= 352 .* got 100"),
    "vox_offset beyond the file": _case(nifti.far_offset_nii, DamagedFileError, rf"found 0 bytes in the file: {CUT}"),
    "dim[0] = 0": _case(nifti.no_dimensions_nii, DamagedFileError, r"1 to 7 dimensions .* dim\[0\] = 0"),
    "qform-only, pixdim NaN": _case(
        nifti.qform_nan_pixdim_nii, UnsupportedGeometryError, r"finite voxel sizes pixdim\[1\.\.3\] .*\(1.5, nan, 2.0\)"
    ),
    "qform-only, pixdim inf": _case(
        nifti.qform_inf_pixdim_nii, UnsupportedGeometryError, r"finite voxel sizes .*got \(1.5, 1.5, inf\)"
    ),
    "qform-only, pixdim negative": _case(
        nifti.qform_negative_pixdim_nii,
        UnsupportedGeometryError,
        r"positive voxel sizes pixdim\[1\.\.3\] in the qform .*got \(1.5, -1.5, 2.0\): ITK .* flip an axis",
    ),
    "qform-only, pixdim zero": _case(
        nifti.qform_zero_pixdim_nii, UnsupportedGeometryError, r"between 0.001 and 1000 mm .*got \(0.0, 1.5, 2.0\) mm"
    ),
    "qform-only, qfac -0.5": _case(
        nifti.qform_bad_qfac_nii, UnsupportedGeometryError, r"expected qfac \(pixdim\[0\]\) of 1 or -1 .*got -0.5"
    ),
    "qform of a non-unit quaternion": _case(
        nifti.qform_non_unit_quaternion_nii,
        UnsupportedGeometryError,
        r"b\^2 \+ c\^2 \+ d\^2 <= 1, .*got \(0.9, 0.9, 0\) \(b\^2 \+ c\^2 \+ d\^2 = 1.62\): the qform is damaged",
    ),
    "units metres": _case(
        nifti.units_meter_nii, UnsupportedGeometryError, r"millimetres .*got meters \(xyzt_units 1\): ITK .* by 1000"
    ),
    "units microns": _case(nifti.units_micron_nii, UnsupportedGeometryError, r"got microns \(xyzt_units 11\)"),
    "label-map intent": _case(
        nifti.label_intent_nii, InputError, r"got a label map: .* intent_code 1002 \(NIFTI_INTENT_LABEL\)"
    ),
    "DT_BINARY voxels": _case(
        nifti.binary_datatype_nii, InputError, r"got DT_BINARY \(1 bit per voxel\) \(datatype code 1\)"
    ),
    "more slices than the header says": _case(
        nifti.trailing_slices_nii, DamagedFileError, r"5x4x3 int16\), found at least one slice \(40 bytes\) more"
    ),
}

ITK_CASES = {
    "nrrd cut short": _case(itk.nrrd_truncated, DamagedFileError, rf"found 30000 bytes \(30.0 KB\): {CUT}"),
    "nrrd gzip cut short": _case(itk.nrrd_gzip_truncated, DamagedFileError, rf"\(gzip data\): {CUT}"),
    "nrrd gzip failing its CRC": _case(itk.nrrd_gzip_corrupt, DamagedFileError, r"corrupt .*incorrect data check"),
    "nrrd bzip2 cut short": _case(itk.nrrd_bzip2_truncated, DamagedFileError, rf"\(bzip2 data\): {CUT}"),
    "nrrd detached data short": _case(
        itk.nrrd_detached_short, DamagedFileError, rf"found 1000 bytes \(1.0 KB\) in the data file: {CUT}"
    ),
    "nrrd detached data missing": _case(itk.nrrd_detached_missing, DamagedFileError, r"gone.raw .* cannot be read"),
    "nrrd data file climbing out": _case(
        itk.nrrd_data_file_climbs_out, UnsafePathError, rf"'\.\./secret.raw'.*{OUTSIDE}"
    ),
    "nrrd data file /dev/zero": _case(itk.nrrd_data_file_absolute, UnsafePathError, rf"'/dev/zero', .*{OUTSIDE}"),
    "nrrd data LIST leaving": _case(itk.nrrd_data_list_outside, UnsafePathError, rf"'\.\./\.\./part1.raw'.*{OUTSIDE}"),
    "nrrd header bomb": _case(itk.nrrd_header_bomb, DamagedFileError, r"2048x2048x2048 int16 = 17.2 GB", bomb=True),
    "nrrd ascii short": _case(itk.nrrd_ascii_short, DamagedFileError, rf"found 10000 bytes .*\(text data\): {CUT}"),
    "nrrd without data": _case(itk.nrrd_without_data, DamagedFileError, r"inline after a blank line .* found neither"),
    "nrrd unknown encoding": _case(itk.nrrd_unknown_encoding, InputError, r"expected a NRRD encoding .* got 'zstd'"),
    "nrrd 4D": _case(itk.nrrd_4d, InputError, r"got a 4D image of size \(4, 5, 3, 2\)"),
    "nrrd sheared": _case(itk.nrrd_sheared, UnsupportedGeometryError, rf"holds a shear of 26.6 degrees.*{SHEAR}"),
    "nrrd spacing 1e9 mm": _case(itk.nrrd_huge_spacing, UnsupportedGeometryError, r"got \(1.0, 1.0, 1000000000.0\) mm"),
    "nrrd NaN": _case(itk.nrrd_nan_float, InputError, r"1 NaN, 0 infinite, the first at voxel index .* \(7, 6, 5\)"),
    "nrrd header over 1 MB": _case(itk.nrrd_long_header, DamagedFileError, r"NRRD header of at most 1048576 bytes"),
    "text named .nrrd": _case(itk.text_as_nrrd, InputError, r"expected a NRRD file \(starting 'NRRD000'\), got text"),
    "mha cut short": _case(itk.mha_truncated, DamagedFileError, rf"found 30000 bytes \(30.0 KB\): {CUT}"),
    "mha compressed cut short": _case(
        itk.mha_compressed_truncated, DamagedFileError, r"compressed voxel data .* cut short"
    ),
    "mha compressed stream short": _case(
        itk.mha_compressed_short_stream, DamagedFileError, rf"found 24000 bytes \(24.0 KB\) \(gzip data\): {CUT}"
    ),
    "mha zlib stream short (268 MB claim)": _case(
        itk.mha_compressed_short_large_claim,
        DamagedFileError,
        rf"268.4 MB\), found 300000 bytes \(300.0 KB\) \(gzip data\): {CUT}",
        bomb=True,
    ),
    "mha compressed header bomb": _case(
        itk.mha_compressed_bomb, DamagedFileError, r"17.2 GB\), found \d+ bytes .* at most", bomb=True
    ),
    "mha header bomb": _case(itk.mha_header_bomb, DamagedFileError, r"17.2 GB\), found 1000 bytes", bomb=True),
    "mhd raw short": _case(
        itk.mhd_raw_short, DamagedFileError, rf"found 1000 bytes \(1.0 KB\) in the data file: {CUT}"
    ),
    "mhd raw missing": _case(itk.mhd_raw_missing, DamagedFileError, r"ct.raw that the header .* cannot be read"),
    "mhd data file climbing out": _case(itk.mhd_climbs_out, UnsafePathError, rf"which is /etc/passwd, {OUTSIDE}"),
    "mhd data file absolute": _case(
        itk.mhd_absolute, UnsafePathError, rf"'/etc/passwd', which is /etc/passwd, {OUTSIDE}"
    ),
    "mhd data file linking out": _case(itk.mhd_link_out, UnsafePathError, rf"'ct.raw', which is /dev/zero, {OUTSIDE}"),
    "mhd pattern climbing out": _case(itk.mhd_pattern_out, UnsafePathError, rf"'\.\./slice001.raw'.*{OUTSIDE}"),
    "mhd LIST leaving": _case(itk.mhd_list_out, UnsafePathError, rf"'/etc/hostname'.*{OUTSIDE}"),
    "mhd pattern of 1e9 files": _case(itk.mhd_pattern_bomb, DamagedFileError, r"at most 100000 files"),
    "mha without ElementDataFile": _case(itk.mha_no_data_line, DamagedFileError, r"ElementDataFile line .* none"),
    "mha zero spacing": _case(itk.mha_zero_spacing, UnsupportedGeometryError, r"got \(0.8, 0.0, 2.5\) mm"),
    "mha sheared": _case(itk.mha_sheared, UnsupportedGeometryError, rf"header of .* holds a shear of .*{SHEAR}"),
    "mha 2D": _case(itk.mha_2d, InputError, r"expected a 3D volume, got a 2D image of size \(40, 30\)"),
    "mha DimSize of text": _case(
        itk.mha_dims_text, DamagedFileError, r"expected DimSize = 3 whole numbers .*got '40 abc 20'"
    ),
    "mha DimSize negative": _case(itk.mha_dims_negative, DamagedFileError, r"DimSize = 3 whole .*got '40 -30 20'"),
    "mha ElementSpacing NaN": _case(
        itk.mha_nan_spacing, DamagedFileError, r"expected ElementSpacing = 3 finite numbers .*got '0.8 nan 2.5'"
    ),
    "mha ElementType MET_HALF": _case(
        itk.mha_unknown_type, DamagedFileError, r"expected ElementType = one of MET_CHAR, .*got 'MET_HALF'"
    ),
    "mhd data file a folder": _case(
        itk.mhd_data_file_folder, DamagedFileError, r"names to be a file, got .*ct.raw, which is a folder"
    ),
    "mhd data file '.'": _case(itk.mhd_data_file_dot, DamagedFileError, r"to be a file, got .*, which is a folder"),
    "nrrd data file a FIFO": _case(
        itk.nrrd_data_file_fifo, DamagedFileError, r"to be a file, got .*ct.raw, which is a FIFO \(named pipe\)"
    ),
    "nrrd kinds with a list axis": _case(
        itk.nrrd_two_domain_axes,
        InputError,
        r"readable \.nrrd image header in .*kinds.nrrd: ReadImageInformation: number of domain axes .* \(2\)",
    ),
    "mha compressed inline without CompressedDataSize": _case(
        itk.mha_compressed_no_size,
        DamagedFileError,
        r"expected a CompressedDataSize line in the MetaImage header .*found none: MetaIO then misreads",
    ),
    "text named .mha": _case(itk.text_as_mha, InputError, r"expected a MetaImage header .* got text"),
}

DICOM_CASES = {
    "DICOM slice cut short": BadInput(
        dicom.truncated_slice,
        DamagedFileError,
        r"1 cannot be read \(damaged or cut short\): damaged.dcm; a slice left out",
    ),
    "DICOM file of garbage": BadInput(dicom.garbage_dicom_file, DamagedFileError, r"cannot be read .*: extra.dcm"),
    "DICOM SEG only": BadInput(
        dicom.only_seg, InputError, r"found only non-image objects: seg_001.dcm \(Segmentation \(SEG\)\)"
    ),
    "DICOM RTSTRUCT only": BadInput(
        dicom.only_rtstruct, InputError, r"only non-image objects: rtstruct.dcm \(RT Structure Set \(RTSTRUCT\)\)"
    ),
    "DICOM localizer only": BadInput(
        dicom.only_localizer, InputError, r"got only localizer or non-image objects: scout_001.dcm \(localizer\)"
    ),
    "DICOM missing slice": BadInput(
        dicom.missing_slice,
        UnsupportedGeometryError,
        r"evenly spaced slices .* steps of 2, 4 mm .*: 4 mm between .* \(1 missing slice\) where the others are 2 mm",
    ),
    "DICOM duplicate position": BadInput(
        dicom.duplicate_position,
        UnsupportedGeometryError,
        r"one slice per position .* got (slice_004.dcm and again_007.dcm|again_007.dcm and slice_004.dcm) both at "
        r"-798.5 mm .* different content",
    ),
    "DICOM gantry tilt": BadInput(
        dicom.tilted, UnsupportedGeometryError, r"tilted by 15 degrees \(gantry tilt\): slice_006.dcm lies 2.68 mm"
    ),
    "DICOM slices of two sizes": BadInput(
        dicom.mixed_sizes,
        InputError,
        r"one size and pixel spacing .* small_006.dcm \(256x256, \(1.953125, 1.953125\) mm\)",
    ),
    "DICOM slices of two orientations": BadInput(
        dicom.two_orientations, UnsupportedGeometryError, r"slices of one orientation .* turned_006.dcm"
    ),
    "DICOM without ImagePositionPatient": BadInput(
        dicom.without_position,
        UnsupportedGeometryError,
        r"got 4 of 4 slices without ImagePositionPatient \(0020,0032\) \(slice_001.dcm, .*how large .* unknown",
    ),
    "DICOM without ImageOrientationPatient": BadInput(
        dicom.without_orientation, UnsupportedGeometryError, r"4 of 4 slices without ImageOrientationPatient"
    ),
    "DICOM export tree": BadInput(
        dicom.export_tree, InputError, r"DICOM series lie in the folders \[.patient/study/series.\] below it"
    ),
    "DICOM without PixelSpacing": BadInput(
        dicom.without_pixel_spacing, UnsupportedGeometryError, r"4 of 4 slices without PixelSpacing \(0028,0030\)"
    ),
    "DICOM over the memory limit": BadInput(
        dicom.whole_series,
        ImageTooLargeError,
        r"512x512x20 int16 voxels = 10.5 MB stored, 21.0 MB as float32",
        env={"GASA_MAX_IMAGE_BYTES": "10MB"},
    ),
    "DICOM single slice": BadInput(dicom.single_slice, InputError, r"at least 2 voxels .* got size \(512, 512, 1\)"),
}

MISREAD = r"MetaIO would read what is not a number as 0 and misplace the image"
SPACING = r"expected a voxel spacing between 0.001 and 1000 mm along each axis, got"
SCALAR = r"expected a scalar image \(1 value per voxel\), got 3 components per voxel"
ONE_THICK = r"expected a 3D volume with at least 2 voxels along each axis, got size"
SLOPE = r"expected a non-zero, finite RescaleSlope \(0028,1053\) in every slice of the DICOM series of .*, got"
NON_IMAGE = r"expected a DICOM image series in folder .*, found only non-image objects:"

# The second sweep: what MetaIO and teem misread or relay, vector / 2D / one-voxel images in NRRD and MetaImage,
# NIfTI pairs and Analyze headers, unusable DICOM rescales and DICOM folders holding no image.
MORE_CASES = {
    "nrrd RGB": _case(more.nrrd_rgb, InputError, rf"{SCALAR} .*rgb.nrrd, size \(20, 20, 10\)"),
    "nrrd 3-vector": _case(more.nrrd_vector, InputError, rf"{SCALAR} .*vector.nrrd"),
    "mha 3 channels": _case(more.mha_three_channels, InputError, rf"{SCALAR} .*channels.mha"),
    "mha MET_STRING": _case(more.mha_string_type, DamagedFileError, r"ElementType = one of MET_CHAR, .*'MET_STRING'"),
    "nrrd 2D": _case(more.nrrd_2d, InputError, r"expected a 3D volume, got a 2D image of size \(40, 30\)"),
    "mha one slice": _case(more.mha_one_slice, InputError, rf"{ONE_THICK} \(40, 30, 1\)"),
    "nrrd one row": _case(more.nrrd_one_row, InputError, rf"{ONE_THICK} \(40, 1, 20\)"),
    "nrrd negative spacings": _case(more.nrrd_negative_spacings, UnsupportedGeometryError, rf"{SPACING} \(0.8, -0.8"),
    "mha negative spacing": _case(more.mha_negative_spacing, UnsupportedGeometryError, rf"{SPACING} \(0.8, -0.8"),
    "mha Offset with NaN": _case(
        more.mha_offset_nan, DamagedFileError, rf"expected Offset = 3 finite numbers \(mm\) .*'10 nan 30': {MISREAD}"
    ),
    "mha Position with text": _case(more.mha_position_text, DamagedFileError, r"Position = 3 finite .*'10 abc 30'"),
    "mha TransformMatrix with NaN": _case(more.mha_matrix_nan, DamagedFileError, r"TransformMatrix = 9 finite .*nan"),
    "mha TransformMatrix of 6": _case(more.mha_matrix_short, DamagedFileError, r"9 finite numbers .*'1 0 0 0 1 0'"),
    "nrrd space origin NaN": _case(
        more.nrrd_origin_nan, DamagedFileError, r"expected 'space origin' to be vectors of finite .*'\(10,nan,30\)'"
    ),
    "nrrd without endian": _case(
        more.nrrd_without_endian, InputError, r"header in .*no_endian.nrrd: type \(short\) and encoding \(raw\) require"
    ),
    "nrrd bzip2 (complete)": _case(
        more.nrrd_bzip2_complete, InputError, r"expected NRRD voxel data encoded raw, gzip, text or hex .*got bzip2"
    ),
    "empty .nrrd": _case(more.empty_nrrd, InputError, r"expected a NRRD file .*got an empty file \(0 bytes\)"),
    "empty .mha": _case(more.empty_mha, InputError, r"expected a MetaImage header .*got an empty file \(0 bytes\)"),
    "float128 NIfTI": _case(more.float128_nii, InputError, r"up to 64-bit\), got void \(datatype code 1536\)"),
    "spacing 1e-6 mm": _case(more.micro_spacing_nii, UnsupportedGeometryError, rf"{SPACING} \(9.99999"),
    "zip named .nii.gz": _case(more.zip_as_nii_gz, InputError, r"NIfTI-1 or NIfTI-2 image .*, got a zip archive"),
    "Analyze 7.5 header": _case(
        more.analyze_header, InputError, r"NIfTI pair header .* got an Analyze 7.5 header \(no NIfTI magic\)"
    ),
    "NIfTI pair without .img": _case(
        more.pair_without_img, DamagedFileError, r"voxel data of the NIfTI pair header .*lone.hdr in lone.img .*none"
    ),
    "NIfTI pair .img cut short": _case(
        more.pair_img_cut_short, DamagedFileError, rf"cut.img \(its header claims 40x30x20 int16 .*found 30000 .*{CUT}"
    ),
    "DICOM RescaleSlope 0": BadInput(more.dicom_slope_zero, InputError, rf"{SLOPE} '0' in 6 of 6 slices"),
    "DICOM RescaleSlope text": BadInput(more.dicom_slope_text, InputError, rf"{SLOPE} 'ab' in 6 of 6 slices"),
    "DICOM encapsulated PDF only": BadInput(more.dicom_only("pdf"), InputError, rf"{NON_IMAGE} pdf.dcm \(Encapsulated"),
    "DICOM SR only": BadInput(more.dicom_only("sr"), InputError, rf"{NON_IMAGE} sr.dcm \(Structured Report \(SR\)\)"),
    "DICOM presentation state only": BadInput(more.dicom_only("pr"), InputError, rf"{NON_IMAGE} pr.dcm \(Presentation"),
    "DICOM one series per slice": BadInput(
        more.dicom_one_series_per_slice,
        InputError,
        r"expected a DICOM series of at least 2 slices in .*each, got 6 series of one slice each \(every file has a "
        r"SeriesInstanceUID of its own",
    ),
    "DICOM without pixel data": BadInput(
        more.dicom_without_pixel_data, DamagedFileError, r"but 6 cannot be read \(damaged or cut short\): IM0000.dcm"
    ),
}

BAD_INPUTS: dict[str, BadInput] = {**NIFTI_CASES, **ITK_CASES, **DICOM_CASES, **MORE_CASES}
