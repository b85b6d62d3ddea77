"""Read a CT volume (NIfTI, NRRD, MHA/MHD file or DICOM series folder) into a float32 (z, y, x) array."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from GASACore.errors import InputError
from GASACore.io.dicom import read_dicom_series, select_dicom_series
from GASACore.io.formats import IMAGE_SUFFIXES, SEGMENTATION_SUFFIX, image_suffix, looks_like_dicom_file
from GASACore.io.geometry import Geometry

__all__ = ["LoadedImage", "read_image"]

logger = logging.getLogger(__name__)

_COMPLEX_PIXEL_IDS = {sitk.sitkComplexFloat32, sitk.sitkComplexFloat64}
_VECTOR_PIXEL_IDS = {getattr(sitk, name) for name in dir(sitk) if name.startswith("sitkVector")}


@dataclass
class LoadedImage:
    """A 3D image read from disk.

    Attributes:
        array: voxel values as float32, shape (z, y, x) (numpy order: the reverse of ``geometry.size``);
            for CT these are Hounsfield units.
        geometry: size, spacing (mm), origin and direction (LPS) of the grid.
        source: the file or DICOM folder it was read from.
        pixel_type: the pixel type stored in the file, as SimpleITK names it (e.g. ``"32-bit signed integer"``).
    """

    array: np.ndarray
    geometry: Geometry
    source: str
    pixel_type: str

    def __post_init__(self) -> None:
        if self.array.dtype != np.float32 or self.array.shape != self.geometry.shape_zyx:
            raise ValueError(
                f"LoadedImage.array must be float32 of shape (z, y, x) = {self.geometry.shape_zyx}, "
                f"got {self.array.dtype} of shape {self.array.shape}"
            )


def _supported_text() -> str:
    return ", ".join(IMAGE_SUFFIXES) + " or a DICOM series folder"


def _check_file_name(path: Path) -> None:
    if path.name.lower().endswith(SEGMENTATION_SUFFIX):
        raise InputError(f"expected an image to segment, got a 3D Slicer segmentation file {path}")
    if image_suffix(path) is not None:
        return
    if looks_like_dicom_file(path):
        raise InputError(
            f"expected a DICOM series folder, got the single DICOM file {path}; pass its folder {path.parent} instead"
        )
    raise InputError(f"expected an image file ({_supported_text()}), got {path} (unsupported file name suffix)")


def _read_file(path: Path) -> sitk.Image:
    """Read an image file, checking its header (dimension, components) before loading the voxels."""
    _check_file_name(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise InputError(f"expected an image file ({_supported_text()}), could not read {path} as one") from err
    _check_header(
        path, reader.GetDimension(), tuple(reader.GetSize()), reader.GetNumberOfComponents(), reader.GetPixelID()
    )
    try:
        return reader.Execute()
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1]
        raise InputError(f"expected a readable image file, could not read the voxels of {path}: {reason}") from err


def _check_header(source: Path, dimension: int, size: tuple[int, ...], components: int, pixel_id: int) -> None:
    if pixel_id in _COMPLEX_PIXEL_IDS:
        raise InputError(
            f"expected real-valued voxels, got {sitk.GetPixelIDValueAsString(pixel_id)} pixels in {source}"
        )
    if components != 1:
        raise InputError(
            f"expected a scalar image (1 value per voxel), got {components} components per voxel "
            f"(a vector, RGB or multi-channel image) in {source}, size {size}"
        )
    if dimension == 4 and size[3] == 1:
        return  # squeezed after reading
    if dimension != 3:
        raise InputError(
            f"expected a 3D volume, got a {dimension}D image of size {size} (x, y, z, ...) from {source}"
            + ("; only a 4th axis of size 1 can be dropped" if dimension > 3 else "")
        )


def _to_3d(image: sitk.Image, source: Path) -> sitk.Image:
    """Drop a 4th axis of size 1 and refuse images that are not proper 3D volumes."""
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = sitk.Extract(image, [*image.GetSize()[:3], 0], [0, 0, 0, 0])
    components = image.GetNumberOfComponentsPerPixel()
    _check_header(source, image.GetDimension(), tuple(image.GetSize()), components, image.GetPixelID())
    if image.GetPixelID() in _VECTOR_PIXEL_IDS:  # a vector image with a single component
        image = sitk.VectorIndexSelectionCast(image, 0)
    size = tuple(image.GetSize())
    if 0 in size:
        raise InputError(f"expected a 3D volume with voxels along every axis, got size {size} (x, y, z) from {source}")
    if 1 in size:
        raise InputError(
            f"expected a 3D volume with at least 2 voxels along each axis, got size {size} (x, y, z) from {source} "
            "(a single slice or 2D image cannot be segmented in 3D)"
        )
    return image


def _to_array(image: sitk.Image, source: Path) -> np.ndarray:
    """Voxels as a new float32 (z, y, x) array; refuses NaN and infinite values."""
    array = sitk.GetArrayViewFromImage(image).astype(np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        raise InputError(
            f"expected finite voxel values, got {bad} NaN or infinite voxels of {array.size} "
            f"in {source} (shape (z, y, x) {array.shape})"
        )
    return array


def read_image(path: str | Path, *, series: str | None = None) -> LoadedImage:
    """Read a 3D image file or a DICOM series folder.

    Args:
        path: a ``.nii``, ``.nii.gz``, ``.nrrd`` (not ``.seg.nrrd``), ``.mha`` or ``.mhd`` file, or a folder
            that directly holds a DICOM series.
        series: SeriesInstanceUID of the series to read when the folder holds several; by default the series
            with the most slices is read (with a warning naming the others).

    Returns:
        The voxels as float32 in (z, y, x) order (any stored pixel type is converted) with the geometry
        (spacing in mm, origin and direction in LPS). A 4D image whose 4th axis has size 1 is read as 3D.

    Raises:
        InputError: the path is missing; the folder is empty, holds no DICOM series or no series ``series``;
            the file is not a readable image; the image is 2D, a single slice, 4D+, has zero-size axes,
            vector/multi-component or complex pixels, or NaN/infinite voxels.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"expected an image file or DICOM folder, got {path}, which does not exist")
    if path.is_dir():
        if not any(path.iterdir()):
            raise InputError(f"expected a DICOM series folder, got the empty folder {path}")
        chosen = select_dicom_series(path, series)
        logger.info("reading DICOM series %s from %s", chosen.summary(), path)
        image = read_dicom_series(chosen)
    else:
        if series is not None:
            raise InputError(f"series={series!r} selects a DICOM series in a folder, but {path} is a file")
        image = _read_file(path)
    image = _to_3d(image, path)
    array = _to_array(image, path)
    loaded = LoadedImage(array, Geometry.from_sitk(image), str(path), image.GetPixelIDTypeAsString())
    logger.debug(
        "read %s: size %s, spacing %s mm, %s, pixel type %s",
        path,
        loaded.geometry.size,
        loaded.geometry.spacing,
        loaded.geometry.orientation,
        loaded.pixel_type,
    )
    return loaded
