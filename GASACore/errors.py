"""Exceptions of GASACore. Every message says what was expected and what was given."""

from __future__ import annotations

__all__ = [
    "BundleIntegrityError",
    "Cancelled",
    "DamagedFileError",
    "GASAError",
    "ImageTooLargeError",
    "InputError",
    "ModelError",
    "OutputError",
    "UnsafeModelError",
    "UnsafePathError",
    "UnsupportedGeometryError",
]


class GASAError(Exception):
    """Base class of every error GASACore raises on purpose."""


class InputError(GASAError, ValueError):
    """The input image (or its path) cannot be segmented: not an image, wrong dimensions, NaNs..."""


class DamagedFileError(InputError):
    """An input file holds less (or far more) voxel data than its header claims, or its data is corrupt.

    Raised before the voxels are used: a file cut short in transfer, a gzip stream that ends early or fails
    its checksum, a header claiming more voxels than the file can hold, a damaged file in a DICOM folder.
    """


class ImageTooLargeError(InputError):
    """The image the header claims needs more memory than the limit allows (refused before allocating).

    The limit defaults to a quarter of the machine's memory; ``GASA_MAX_IMAGE_BYTES`` raises or lowers it.
    """


class UnsafePathError(InputError):
    """A header names a data file outside its own folder (absolute path, ``..``, or a link leading out)."""


class UnsupportedGeometryError(InputError):
    """The grid cannot be represented as spacing, origin and an orthonormal direction, or is implausible.

    Sheared or degenerate affines, zero / non-finite / absurd spacing, gantry-tilted or irregular DICOM
    slice stacks (gaps, duplicates).
    """


class ModelError(GASAError, ValueError):
    """The model (bundle or nnU-Net folder) is missing, malformed or does not fit the input."""


class BundleIntegrityError(ModelError):
    """A model file's SHA-256 differs from the one its bundle records: refused before loading."""


class UnsafeModelError(ModelError):
    """A model file would run Python code to load (a pickle naming objects other than tensors and plain values)."""


class OutputError(GASAError, OSError):
    """An output cannot be written where asked: bad suffix, unwritable folder, the input itself, locked by
    another run, or the write failed (full disk, file size limit, read-only file system).

    Raised before any model work where it can be known then; a write that fails later leaves no file.
    """


class Cancelled(GASAError):
    """The run was cancelled through its cancel callback or event."""
