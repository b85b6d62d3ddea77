"""Read a CT volume (NIfTI, NRRD, MHA/MHD file or DICOM series folder) into a float32 (z, y, x) array.

NIfTI goes through nibabel (:mod:`GASACore.io.nifti`); NRRD, MetaImage and DICOM through SimpleITK, after the
header's claims are checked here: data files confined to the header's folder, the voxel bytes the header claims
against what its data files hold and against the memory limit (:mod:`GASACore.io.limits`), and the grid
(:mod:`GASACore.io.grid`), all before SimpleITK allocates the image.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from GASACore.errors import ImageTooLargeError, InputError
from GASACore.io.datafiles import DataLayout
from GASACore.io.dicom import read_dicom_series, select_dicom_series
from GASACore.io.formats import IMAGE_SUFFIXES, SEGMENTATION_SUFFIX, image_suffix, looks_like_dicom_file
from GASACore.io.geometry import Geometry
from GASACore.io.grid import checked_geometry, spatial_size
from GASACore.io.headers import metaimage_layout, nrrd_layout
from GASACore.io.limits import check_data_fits, check_image_size, format_bytes, max_image_bytes
from GASACore.io.native_stderr import native_stderr_to_log
from GASACore.io.nifti import read_nifti
from GASACore.io.pathkind import check_input_path
from GASACore.io.voxels import to_float32

__all__ = ["LoadedImage", "read_image"]

logger = logging.getLogger(__name__)

_COMPLEX_PIXEL_IDS = {sitk.sitkComplexFloat32, sitk.sitkComplexFloat64}
#: SimpleITK's reader for each suffix: never let it guess the format from the content.
_IMAGE_IO = {".nrrd": ("NrrdImageIO", nrrd_layout), ".mha": ("MetaImageIO", metaimage_layout)}
_IMAGE_IO[".mhd"] = _IMAGE_IO[".mha"]
_IMAGE_IO[".nhdr"] = _IMAGE_IO[".nrrd"]  # a NRRD header whose voxels are in its 'data file'
#: What ITK puts before its reason (``ITK ERROR: NrrdImageIO(0x55d1...): ``, ``sitk::ERROR: ``): not for users.
_ITK_PREFIX = re.compile(r"^(?:.*?ITK ERROR: \w+\(0x[0-9a-fA-F]+\): |sitk::ERROR: )")


#: The NRRD library's function names before its reasons (``[nrrd] _nrrdHeaderCheck: ``): not for users.
_TEEM_PREFIX = re.compile(r"\[nrrd\] _?\w+: ")


def _itk_reason(err: RuntimeError, lines: int = 1) -> str:
    """The last ``lines`` of an ITK error, without its object address, prefixes and library function names."""
    text = " ".join(line.strip() for line in str(err).strip().splitlines()[-lines:])
    return _TEEM_PREFIX.sub("", _ITK_PREFIX.sub("", text))


@dataclass
class LoadedImage:
    """A 3D image read from disk.

    Attributes:
        array: voxel values as float32, shape (z, y, x) (numpy order: the reverse of ``geometry.size``);
            for CT these are Hounsfield units.
        geometry: size, spacing (mm), origin and direction (LPS) of the grid.
        source: the file or DICOM folder it was read from.
        pixel_type: the pixel type stored in the file, as SimpleITK names it (e.g. ``"32-bit signed integer"``).
        unplaced: a NIfTI file with neither sform nor qform (both codes 0): ``geometry`` is nibabel's fallback,
            and a label map for it is best written the same way (``write_label_map(..., unplaced=True)``).
        modality: a DICOM series' Modality (0008,0060), e.g. ``"CT"`` or ``"MR"``; ``""`` for files (unknown).
    """

    array: np.ndarray
    geometry: Geometry
    source: str
    pixel_type: str
    unplaced: bool = False
    modality: str = ""

    def __post_init__(self) -> None:
        if self.array.dtype != np.float32 or self.array.shape != self.geometry.shape_zyx:
            raise ValueError(
                f"LoadedImage.array must be float32 of shape (z, y, x) = {self.geometry.shape_zyx}, "
                f"got {self.array.dtype} of shape {self.array.shape}"
            )


def _supported_text() -> str:
    return ", ".join(IMAGE_SUFFIXES) + " or a DICOM series folder"


def _check_file_name(path: Path) -> str:
    if path.name.lower().endswith(SEGMENTATION_SUFFIX):
        raise InputError(f"expected an image to segment, got a 3D Slicer segmentation file {path}")
    suffix = image_suffix(path)
    if suffix is not None:
        return suffix
    if looks_like_dicom_file(path):
        raise InputError(
            f"expected a DICOM series folder, got the single DICOM file {path}; pass its folder {path.parent} instead"
        )
    raise InputError(f"expected an image file ({_supported_text()}), got {path} (unsupported file name suffix)")


def _check_pixels(source: Path, size: tuple[int, ...], components: int, pixel_id: int) -> None:
    if pixel_id in _COMPLEX_PIXEL_IDS:
        raise InputError(
            f"expected real-valued voxels, got {sitk.GetPixelIDValueAsString(pixel_id)} pixels in {source}"
        )
    if components != 1:
        raise InputError(
            f"expected a scalar image (1 value per voxel), got {components} components per voxel "
            f"(a vector, RGB or multi-channel image) in {source}, size {size}"
        )


def _itemsize(pixel_id: int) -> tuple[str, int]:
    """numpy name and bytes of a scalar SimpleITK pixel type."""
    dtype = sitk.GetArrayViewFromImage(sitk.Image([1, 1], pixel_id)).dtype
    return dtype.name, dtype.itemsize


def _check_data(path: Path, layout: DataLayout, size: tuple[int, ...], pixel_id: int, limit: int) -> None:
    """Refuse a header that claims more than its data files hold, or more than the limit, before reading."""
    dtype, itemsize = _itemsize(pixel_id)
    claimed = int(np.prod(size, dtype=object)) * itemsize
    detail = " at most" if layout.needs_count else (" in the data file" if layout.pieces[0].path != path else "")
    check_data_fits(path, size, dtype, itemsize, layout.bound(claimed), detail=detail)
    check_image_size(path, size, dtype, itemsize, limit=limit)
    if layout.needs_count:
        encoding = layout.pieces[0].encoding
        check_data_fits(path, size, dtype, itemsize, layout.count(claimed, itemsize), detail=f" ({encoding} data)")


def _read_file(path: Path, suffix: str, limit: int) -> tuple[sitk.Image, Geometry]:
    """Read a NRRD or MetaImage file with SimpleITK once its header's claims are checked."""
    io_name, layout_of = _IMAGE_IO[suffix]
    layout = layout_of(path)  # before SimpleITK opens anything: data files stay in the header's folder
    layout.check_readable()
    reader = sitk.ImageFileReader()
    reader.SetImageIO(io_name)
    reader.SetFileName(str(path))
    try:
        with native_stderr_to_log(logger, "SimpleITK"):  # MetaIO prints its own lines about a bad header
            reader.ReadImageInformation()
    except RuntimeError as err:
        raise InputError(f"expected a readable {suffix} image header in {path}: {_itk_reason(err)}") from err
    size = tuple(int(v) for v in reader.GetSize())
    _check_pixels(path, size, reader.GetNumberOfComponents(), reader.GetPixelID())
    size3 = spatial_size(path, size)
    rank = len(size)
    direction = np.reshape(reader.GetDirection(), (rank, rank))[:3, :3].reshape(-1)
    spacing, origin = reader.GetSpacing()[:3], reader.GetOrigin()[:3]
    geometry = checked_geometry(path, size3, spacing, origin, direction, what="header")
    _check_data(path, layout, size, reader.GetPixelID(), limit)
    if any(piece.encoding == "bzip2" for piece in layout.pieces):
        raise InputError(
            f"expected NRRD voxel data encoded raw, gzip, text or hex (what SimpleITK decodes), got bzip2 data in "
            f"{path}: re-save it with gzip encoding (e.g. in 3D Slicer, or 'unu save -e gz')"
        )
    try:
        with native_stderr_to_log(logger, "SimpleITK"):
            image = reader.Execute()
    except MemoryError as err:
        raise ImageTooLargeError(f"could not allocate the {format_bytes(np.prod(size) * 4)} image {path}") from err
    except RuntimeError as err:
        reason = _itk_reason(err, lines=2)
        raise InputError(f"expected a readable image file, could not read the voxels of {path}: {reason}") from err
    if image.GetDimension() == 4:
        image = sitk.Extract(image, [*size3, 0], [0, 0, 0, 0])
    return image, geometry


def read_image(path: str | Path, *, series: str | None = None, max_bytes: int | None = None) -> LoadedImage:
    """Read a 3D image file or a DICOM series folder.

    Args:
        path: a ``.nii``, ``.nii.gz``, ``.nrrd`` (not ``.seg.nrrd``), ``.nhdr``, ``.mha`` or ``.mhd`` file, or a folder
            that directly holds a DICOM series.
        series: SeriesInstanceUID of the series to read when the folder holds several; by default the series
            with the most slices is read (with a warning naming the others).
        max_bytes: the largest float32 array (bytes) to accept; default ``GASA_MAX_IMAGE_BYTES`` or a quarter of
            the machine's memory (:func:`GASACore.io.limits.max_image_bytes`).

    Returns:
        The voxels as float32 in (z, y, x) order (any stored pixel type converted, NIfTI scaling applied) with the
        geometry (spacing in mm, origin and direction in LPS). Trailing axes of size 1 (4D with one volume) are
        dropped.

    Raises:
        InputError: the path is missing; the folder is empty, holds no DICOM image series or no series
            ``series``; the file is not a readable image; the image is 2D, a single slice, 4D+, has zero-size
            axes, vector/multi-component or complex pixels, or NaN/infinite voxels. Its subclasses say more:
        DamagedFileError: less voxel data than the header claims (a file cut short), corrupt compressed data,
            a damaged file in a DICOM folder.
        ImageTooLargeError: the image would exceed the memory limit (refused before allocating).
        UnsafePathError: a header names a data file outside its folder.
        UnsupportedGeometryError: a sheared direction, implausible spacing or origin, a gantry-tilted or
            irregular DICOM slice stack.
    """
    path = Path(path)
    limit = max_image_bytes(max_bytes)
    check_input_path(path, "an image file or DICOM folder")
    if path.is_dir():
        if not any(path.iterdir()):
            raise InputError(f"expected a DICOM series folder, got the empty folder {path}")
        chosen = select_dicom_series(path, series)
        logger.info("reading DICOM series %s from %s", chosen.summary(), path)
        image = read_dicom_series(chosen, limit=limit)
        size = spatial_size(path, image.GetSize())
        geometry = checked_geometry(path, size, image.GetSpacing(), image.GetOrigin(), image.GetDirection())
        array = to_float32(sitk.GetArrayViewFromImage(image), path)
        loaded = LoadedImage(array, geometry, str(path), image.GetPixelIDTypeAsString(), modality=chosen.modality)
    else:
        if series is not None:
            raise InputError(f"series={series!r} selects a DICOM series in a folder, but {path} is a file")
        suffix = _check_file_name(path)
        if suffix in (".nii", ".nii.gz", ".hdr"):
            nifti = read_nifti(path, limit=limit)
            loaded = LoadedImage(nifti.array, nifti.geometry, str(path), nifti.pixel_type, nifti.unplaced)
            if nifti.unplaced:
                logger.warning(
                    "%s has neither an sform nor a qform (both codes 0): it is placed as nibabel and nnU-Net place "
                    "it, centred with x flipped (Analyze convention); its world position is unknown, and a NIfTI "
                    "label map is written without them too, so that every reader places it as it places the image",
                    path,
                )
        else:
            image, geometry = _read_file(path, suffix, limit)
            array = to_float32(sitk.GetArrayViewFromImage(image), path)
            loaded = LoadedImage(array, geometry, str(path), image.GetPixelIDTypeAsString())
    logger.debug(
        "read %s: size %s, spacing %s mm, %s, pixel type %s",
        path,
        loaded.geometry.size,
        loaded.geometry.spacing,
        loaded.geometry.orientation,
        loaded.pixel_type,
    )
    return loaded
