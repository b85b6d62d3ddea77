"""Human-readable results: per-label volumes in millilitres and a PNG overlay (axial + coronal)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from GASACore.io import Geometry, atomic_output
from GASACore.labels import Label

__all__ = ["label_volumes_ml", "overlay_image", "write_overlay_png", "write_volumes"]

#: Display window for the CT underneath the overlay (abdomen soft tissue), Hounsfield units.
WINDOW_HU = (-160.0, 240.0)


def label_volumes_ml(labels: np.ndarray, geometry: Geometry, label_info: Sequence[Label]) -> dict[str, float]:
    """Volume of every label in ml (1 ml = 1000 mm^3), in the model's label order; absent labels give 0."""
    voxel_ml = float(np.prod(geometry.spacing)) / 1000.0
    counts = np.bincount(labels.ravel(), minlength=max((lab.value for lab in label_info), default=0) + 1)
    return {label.name: round(float(counts[label.value]) * voxel_ml, 3) for label in label_info}


def write_volumes(volumes: dict[str, float], path: Path) -> Path:
    """Write volumes as CSV (``label,volume_ml``) or JSON by suffix, atomically."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"volumes file must end in .csv or .json, got {path.name}")
    with atomic_output(path, overwrite=True) as temporary, temporary.open("w", newline="", encoding="utf-8") as stream:
        if path.suffix.lower() == ".json":
            json.dump({"unit": "ml", "volumes": volumes}, stream, indent=2)
        else:
            writer = csv.writer(stream)
            writer.writerow(["label", "volume_ml"])
            writer.writerows(volumes.items())
    return path


def _blend(ct_slice: np.ndarray, label_slice: np.ndarray, colors: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    low, high = WINDOW_HU
    gray = np.clip((ct_slice - low) / (high - low), 0.0, 1.0)[..., None] * 255.0
    rgb = np.repeat(gray, 3, axis=-1)
    mask = label_slice > 0
    rgb[mask] = (1 - alpha) * rgb[mask] + alpha * colors[label_slice[mask]]
    return rgb.astype(np.uint8)


def _resize_rows(image: np.ndarray, rows: int) -> np.ndarray:
    """Nearest-neighbour resize of an ``(rows, cols, 3)`` image along the rows (physical aspect)."""
    index = np.minimum((np.arange(rows) * image.shape[0] / rows).astype(int), image.shape[0] - 1)
    return image[index]


def _as_lps(array: np.ndarray, geometry: Geometry) -> tuple[np.ndarray, tuple[float, float, float]]:
    """``array`` ``(z, y, x)`` re-oriented so x runs right->left, y anterior->posterior, z inferior->superior."""
    image = sitk.GetImageFromArray(array)
    geometry.apply_to(image)
    oriented = sitk.DICOMOrient(image, "LPS")
    return sitk.GetArrayViewFromImage(oriented).copy(), tuple(oriented.GetSpacing())  # type: ignore[return-value]


def overlay_image(ct: np.ndarray, labels: np.ndarray, geometry: Geometry, label_info: Sequence[Label]) -> np.ndarray:
    """Axial and coronal slices through the labels' centre, side by side: ``(rows, cols, 3)`` uint8.

    Shown in the radiological convention (patient's right on the left of the picture, head up),
    whatever the image's orientation. The coronal slice keeps its physical aspect ratio.

    Args:
        ct: the CT ``(z, y, x)`` in HU. labels: the label map ``(z, y, x)``. geometry: their geometry.
    """
    ct, spacing = _as_lps(ct, geometry)
    labels, _ = _as_lps(labels, geometry)
    colors = np.zeros((int(labels.max()) + 1 if labels.size else 1, 3), dtype=np.float64)
    for label in label_info:
        if label.value < len(colors):
            colors[label.value] = label.color
    foreground = np.argwhere(labels > 0)
    centre = foreground.mean(axis=0).astype(int) if len(foreground) else np.array(labels.shape) // 2
    axial = _blend(ct[centre[0]], labels[centre[0]], colors)  # rows: anterior -> posterior
    coronal = _blend(ct[:, centre[1]], labels[:, centre[1]], colors)[::-1]  # rows: superior -> inferior
    sx, sy, sz = spacing
    axial = _resize_rows(axial, max(1, round(axial.shape[0] * sy / sx)))
    coronal = _resize_rows(coronal, max(1, round(coronal.shape[0] * sz / sx)))
    height = max(axial.shape[0], coronal.shape[0])
    pad = [np.zeros((height - img.shape[0], img.shape[1], 3), np.uint8) for img in (axial, coronal)]
    gap = np.zeros((height, 4, 3), np.uint8)
    return np.concatenate([np.vstack([axial, pad[0]]), gap, np.vstack([coronal, pad[1]])], axis=1)


def write_overlay_png(
    ct: np.ndarray, labels: np.ndarray, geometry: Geometry, label_info: Sequence[Label], path: Path
) -> Path:
    """Write ``overlay_image`` as an RGB PNG, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"overlay file must end in .png, got {path.name}")
    picture = sitk.GetImageFromArray(overlay_image(ct, labels, geometry, label_info), isVector=True)
    with atomic_output(path, overwrite=True) as temporary:
        sitk.WriteImage(picture, str(temporary))
    return path
