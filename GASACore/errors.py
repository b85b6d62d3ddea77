"""Exceptions of GASACore. Every message says what was expected and what was given."""

from __future__ import annotations

__all__ = ["BundleIntegrityError", "Cancelled", "GASAError", "InputError", "ModelError"]


class GASAError(Exception):
    """Base class of every error GASACore raises on purpose."""


class InputError(GASAError, ValueError):
    """The input image (or its path) cannot be segmented: not an image, wrong dimensions, NaNs..."""


class ModelError(GASAError, ValueError):
    """The model (bundle or nnU-Net folder) is missing, malformed or does not fit the input."""


class BundleIntegrityError(ModelError):
    """A model file's SHA-256 differs from the one its bundle records: refused before loading."""


class Cancelled(GASAError):
    """The run was cancelled through its cancel callback or event."""
