"""Image resampling on a torch device (CPU or GPU) with exactly the rules of :mod:`GASACore.preprocessing.resampling`.

nnU-Net's spline resize (scipy ``zoom``, edge mode, pixel centres aligned, any order) is linear and separable:
along each axis it is one ``(n_in, n_out)`` matrix. :func:`axis_matrix` gets that matrix from scipy itself
(the zoom of an identity, in float64, so the edge padding and spline prefilter are scipy's own), and the
volume is resampled by one matrix product per axis on the device, then clipped as nnU-Net clips.

Accuracy (Testing/GASACore/preprocessing/test_preprocessing_resampling_torch.py): on the CPU the products are
float64 and the result equals scipy's 3D ``zoom`` rounded to float32 (measured bit-identical on the example CT,
and 25-45x faster: BLAS on all threads instead of scipy's one-thread 64-tap loop); on a GPU they are float32,
within 1e-4 absolute of scipy's on normalised real CT (measured 2.4e-6 on the whole example CT, cubic,
3 mm -> 1.5 mm). Order-0 (nearest) axes are exact on both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage

from GASACore.preprocessing.resampling import nearest_indices

__all__ = ["axis_matrix", "resample_image_torch"]

logger = logging.getLogger(__name__)


@lru_cache(maxsize=64)
def _axis_matrix(n_in: int, n_out: int, order: int) -> np.ndarray:
    zoomed = ndimage.zoom(np.eye(n_in), (n_out / n_in, 1.0), order=order, mode="nearest", grid_mode=True)
    if zoomed.shape != (n_out, n_in):
        raise RuntimeError(f"scipy zoom gave shape {zoomed.shape}, expected {(n_out, n_in)}")
    matrix = np.ascontiguousarray(zoomed.T)
    matrix.setflags(write=False)
    return matrix


def axis_matrix(n_in: int, n_out: int, order: int) -> np.ndarray:
    """The ``(n_in, n_out)`` float64 matrix ``M`` with ``zoom(x) = x @ M`` along one axis (read-only).

    Example: linear (order 1) from 2 to 4 samples, pixel centres aligned, edges repeated::

        >>> axis_matrix(2, 4, 1).T.round(2).tolist()
        [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]
    """
    if n_in <= 0 or n_out <= 0 or order not in range(6):
        raise ValueError(f"need positive sizes and a spline order 0-5, got n_in={n_in}, n_out={n_out}, order={order}")
    return _axis_matrix(int(n_in), int(n_out), int(order))


@contextmanager
def _full_float32() -> Iterator[None]:
    """Matrix products in true float32: no TF32 (10-bit mantissa) on Ampere and later GPUs."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _along(x: torch.Tensor, dim: int, n_out: int, order: int) -> torch.Tensor:
    """Resample dim ``dim`` of ``x`` to ``n_out`` samples with a spline of ``order`` (order 0: indexing)."""
    n_in = x.shape[dim]
    if n_in == n_out:
        return x
    if order == 0:
        index = torch.as_tensor(nearest_indices(n_in, n_out), device=x.device)
        return x.index_select(dim, index)
    matrix = torch.tensor(axis_matrix(n_in, n_out, order), dtype=x.dtype, device=x.device)
    return (x.movedim(dim, -1) @ matrix).movedim(-1, dim)


def _resize(channel: torch.Tensor, shape: Sequence[int], order: int, dims: Sequence[int]) -> torch.Tensor:
    """Resize dims ``dims`` of ``channel`` to ``shape`` (one size per dim), shrinking dims first (less work)."""
    for dim in sorted(dims, key=lambda d: shape[dims.index(d)] / channel.shape[d]):
        channel = _along(channel, dim, shape[dims.index(dim)], order)
    return channel


def _resample_channel(
    channel: torch.Tensor, shape: tuple[int, ...], axis: int | None, order: int, order_z: int
) -> torch.Tensor:
    """One ``(X, Y, Z)`` channel, clipped as the CPU path clips (per volume, or per slice across ``axis``)."""
    if axis is None:
        low, high = channel.min(), channel.max()
        return _resize(channel, shape, order, [0, 1, 2]).clamp_(low, high)
    in_plane = [d for d in range(3) if d != axis]
    if any(channel.shape[d] != shape[d] for d in in_plane):
        low, high = channel.amin(dim=in_plane, keepdim=True), channel.amax(dim=in_plane, keepdim=True)
        channel = torch.clamp(_resize(channel, [shape[d] for d in in_plane], order, in_plane), low, high)
    return _along(channel, axis, shape[axis], order_z)


def resample_image_torch(
    data: np.ndarray,
    shape: Sequence[int],
    axis: int | None,
    *,
    order: int,
    order_z: int,
    device: torch.device | str,
    precision: torch.dtype | None = None,
) -> np.ndarray:
    """:func:`~GASACore.preprocessing.resampling.resample_image` computed on ``device`` (float64 on the CPU).

    Args:
        data: ``(C, X, Y, Z)`` float32 image on the host.
        shape: ``(X', Y', Z')`` in voxels.
        axis: the separately resampled axis (:func:`~GASACore.preprocessing.resampling.separate_axis`) or
            ``None``.
        order: spline order of the joint (or in-plane) resize, 0-5.
        order_z: order along ``axis``.
        device: where to compute, e.g. ``cuda:0`` or ``cpu``.
        precision: dtype of the products; ``None``: float64 on the CPU, float32 on a GPU.

    Returns:
        float32 ``(C, X', Y', Z')`` on the host.

    Raises:
        torch.cuda.OutOfMemoryError: the GPU has too little memory (the caller falls back to the CPU path).
    """
    target = tuple(int(s) for s in shape)
    device = torch.device(device)
    dtype = precision or (torch.float64 if device.type == "cpu" else torch.float32)
    out = np.empty((data.shape[0], *target), dtype=np.float32)
    with torch.inference_mode(), _full_float32():
        for c in range(data.shape[0]):
            channel = torch.from_numpy(np.ascontiguousarray(data[c], dtype=np.float32)).to(device, dtype)
            result = _resample_channel(channel, target, axis, order, order_z)
            out[c] = result.cpu().numpy()
            del channel, result
    logger.debug("resampled %s -> %s on %s", tuple(data.shape[1:]), target, device)
    return out
