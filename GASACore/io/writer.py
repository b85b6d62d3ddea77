"""Write a label map in exactly the input geometry, atomically (temporary file + rename)."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from GASACore.errors import DamagedFileError, InputError
from GASACore.io.atomic import atomic_output, output_error
from GASACore.io.formats import LABEL_MAP_SUFFIXES, SEGMENTATION_SUFFIX, label_map_suffix
from GASACore.io.geometry import Geometry
from GASACore.io.native_stderr import native_stderr_to_log
from GASACore.io.segnrrd import segmentation_metadata
from GASACore.labels import Label

__all__ = ["write_label_map"]

logger = logging.getLogger(__name__)

#: Geometry a written file must reproduce (mm); NIfTI stores float32, ~1e-5 mm at 1000 mm from the origin.
_VERIFY_ATOL = 1e-3
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: Room for a label map's header, on top of its voxels (the size a failed write reports it needs).
_HEADER_BYTES = 4096
_EXISTS = "output {path} already exists (FileExistsError); pass overwrite=True to replace it or choose another path"


def _label_dtype(labels: np.ndarray, geometry: Geometry) -> type[np.unsignedinteger]:
    """uint8 when every value is < 256, else uint16; refuses arrays that are not a (z, y, x) label map."""
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "biu":
        kind = labels.dtype if isinstance(labels, np.ndarray) else type(labels).__name__
        raise ValueError(f"labels must be an integer (or bool) numpy array, got {kind}")
    if labels.shape != geometry.shape_zyx:
        raise ValueError(
            f"labels must have shape (z, y, x) = {geometry.shape_zyx} to match geometry size (x, y, z) "
            f"{geometry.size}, got shape {labels.shape}"
        )
    high = int(labels.max())
    low = int(labels.min()) if labels.dtype.kind == "i" else 0
    if low < 0 or high > 65535:
        raise ValueError(f"label values must be 0-65535, got values from {low} to {high}")
    return np.uint8 if high < 256 else np.uint16


def _check_destination(path: Path, overwrite: bool) -> str:
    """The output format suffix of ``path``; refuses unsupported names, missing folders and existing files."""
    suffix = label_map_suffix(path)
    if suffix is None:
        raise InputError(f"expected an output file name ending in one of {', '.join(LABEL_MAP_SUFFIXES)}, got {path}")
    if path.is_dir():
        raise InputError(f"expected an output file path, got the existing folder {path}")
    if not path.parent.is_dir():
        raise InputError(f"expected an existing output folder, got {path.parent}, which does not exist")
    if path.exists() and not overwrite:
        raise InputError(_EXISTS.format(path=path))
    return suffix


def _lower_case_suffix(temporary: Path, suffix: str) -> Path:
    """Where ITK writes ``temporary``: the same name with the format's suffix in lower case.

    ITK chooses its writer (and NIfTI its reader) by a lower-case suffix: ``OUT.NII.GZ``, ``ct.MHA`` or
    ``ct.Nii`` find none, so such a file is written and checked under its lower-case name, then renamed.
    """
    if temporary.name.endswith(suffix):
        return temporary
    return temporary.with_name(temporary.name[: -len(suffix)] + suffix)


def _write_image(image: sitk.Image, destination: Path, target: Path) -> None:
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(destination))
    writer.SetUseCompression(True)
    try:
        with native_stderr_to_log(logger, "SimpleITK"):  # its NIfTI library prints "** ERROR: NWAD" on a full disk
            writer.Execute(image)
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1]
        raise OSError(f"could not write label map {target}: {reason}") from err


def _verify_nifti_complete(written: Path, target: Path) -> Geometry:
    """SimpleITK reads a NIfTI file cut short as if zeros followed: the strict reader must find every voxel.

    Returns the geometry nibabel reads (the one that counts for a file without sform and qform).
    """
    from GASACore.io.nifti import read_nifti

    try:
        return read_nifti(written, limit=2**62).geometry
    except DamagedFileError as err:
        raise OSError(f"the label map written to {target} is incomplete: {err}") from err


def _unplace_nifti(written: Path) -> None:
    """Set both sform_code and qform_code of a NIfTI file SimpleITK wrote to 0 (pixdim, the voxel sizes, stays).

    For an input without either: nibabel then places the label map exactly as it places the image (from the
    voxel sizes), and so does ITK (origin 0, LPS axes), instead of each reader placing one of them elsewhere.
    """
    from nibabel.nifti1 import Nifti1Header

    raw = written.read_bytes()
    compressed = raw[:2] == b"\x1f\x8b"
    content = gzip.decompress(raw) if compressed else raw
    header = Nifti1Header(binaryblock=content[:348], check=False)
    header["qform_code"], header["sform_code"] = 0, 0
    content = header.binaryblock + content[348:]
    written.write_bytes(gzip.compress(content, compresslevel=6, mtime=0) if compressed else content)


def _verify(written: Path, expected: np.ndarray, geometry: Geometry, target: Path, *, unplaced: bool = False) -> None:
    """Read the file back: same voxels and geometry, else raise (catches silent short writes, e.g. disk full)."""
    if label_map_suffix(target) in _NIFTI_SUFFIXES:
        read_back = _verify_nifti_complete(written, target)
        if unplaced and not read_back.is_close(geometry, atol=_VERIFY_ATOL):
            raise ValueError(
                f"{target.name} cannot store geometry {geometry} without an sform: it would hold {read_back}"
            )
    try:
        with native_stderr_to_log(logger, "SimpleITK"):
            image = sitk.ReadImage(str(written))
    except RuntimeError as err:
        raise OSError(f"the label map written to {target} cannot be read back (incomplete write?)") from err
    if image.GetDimension() != 3 or not np.array_equal(sitk.GetArrayViewFromImage(image), expected):
        raise OSError(f"the label map written to {target} does not hold the labels written (incomplete write?)")
    stored = Geometry.from_sitk(image)
    if not unplaced and not stored.is_close(geometry, atol=_VERIFY_ATOL):
        raise ValueError(f"{target.name} cannot store geometry {geometry} exactly: it would hold {stored}")


def write_label_map(
    labels: np.ndarray,
    geometry: Geometry,
    path: str | Path,
    *,
    label_info: Sequence[Label] | None = None,
    overwrite: bool = False,
    unplaced: bool = False,
) -> Path:
    """Write a label map on the grid ``geometry``.

    Args:
        labels: integer label values, shape (z, y, x) = ``geometry.shape_zyx``; 0 is background.
            Stored as uint8 when every value is < 256, else uint16.
        geometry: size, spacing (mm), origin and direction (LPS) to write, normally the input image's.
        path: output file; the format comes from the suffix: ``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``, or
            ``.seg.nrrd`` (a 3D Slicer segmentation with one segment per label: name, colour, terminology).
        label_info: segment names, colours and terminology, used by ``.seg.nrrd`` (other formats hold only
            the values).
        overwrite: replace an existing file at ``path``.
        unplaced: the input was a NIfTI file with neither sform nor qform (:attr:`LoadedImage.unplaced`): a
            NIfTI label map is written without them too, so that nibabel and ITK each place it exactly where
            they place the image (``geometry`` is nibabel's placement); other formats get ``geometry``.

    Returns:
        ``path``. The file appears complete or not at all: it is written to a temporary file in the same
        folder, read back and checked, then renamed; on any error nothing is left behind.

    Raises:
        ValueError: ``labels`` is not an integer array of shape ``geometry.shape_zyx`` with values 0-65535,
            ``label_info`` is invalid, or the format cannot store the geometry.
        InputError: unsupported suffix, missing output folder, or ``path`` exists and ``overwrite`` is False.
        OutputError: the disk is full, the file size limit is reached or the folder is read-only (one line).
        OSError: the file could not be written completely for another reason.
    """
    path = Path(path)
    suffix = _check_destination(path, overwrite)
    array = np.ascontiguousarray(labels, dtype=_label_dtype(labels, geometry))
    image = sitk.GetImageFromArray(array)
    geometry.apply_to(image)
    if suffix == SEGMENTATION_SUFFIX:
        present = np.flatnonzero(np.bincount(array.ravel()))
        for key, value in segmentation_metadata(geometry, [int(v) for v in present if v], label_info).items():
            image.SetMetaData(key, value)
    need = array.nbytes + _HEADER_BYTES
    try:
        with atomic_output(path, overwrite=overwrite, need_bytes=need) as temporary:
            written = _lower_case_suffix(temporary, suffix)
            try:
                _write_image(image, written, path)
                unplaced = unplaced and suffix in _NIFTI_SUFFIXES
                if unplaced:
                    _unplace_nifti(written)
                _verify(written, array, geometry, path, unplaced=unplaced)
                if written != temporary:
                    written.replace(temporary)
            finally:
                if written != temporary:
                    written.unlink(missing_ok=True)
    except FileExistsError as err:  # appeared while we were writing
        raise InputError(_EXISTS.format(path=path)) from err
    except OSError as err:  # the temporary is gone: say why the place could not hold the file
        translated = output_error(path, err, need_bytes=need)
        if translated is err:
            raise
        raise translated from err
    logger.info("wrote label map %s (%s)", path, array.dtype)
    return path
