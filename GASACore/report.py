"""Human-readable results: per-label volumes in millilitres and a PNG overlay (axial, coronal and
sagittal planes with a legend of the labels present)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from GASACore.bitmap_font import GLYPH_HEIGHT, draw_text, text_size
from GASACore.io import Geometry, atomic_output
from GASACore.labels import Label

__all__ = [
    "LEGEND_ROW_PX",
    "MIN_PANEL_PX",
    "label_volumes_ml",
    "legend_image",
    "overlay_image",
    "overlay_panels",
    "write_overlay_png",
    "write_volumes",
]

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


#: Each plane is upsampled (nearest neighbour) so that its longer side has at least this many pixels.
MIN_PANEL_PX = 512
#: Integer scale of the 5x7 bitmap font in titles and the legend.
FONT_SCALE = 2
_GAP = 24
#: Height of a legend row (and of a panel title), pixels.
LEGEND_ROW_PX = GLYPH_HEIGHT * FONT_SCALE + 6


def _resize(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Nearest-neighbour resize of an ``(rows, cols, 3)`` image (pixel centres sampled)."""
    row_index = np.minimum(((np.arange(rows) + 0.5) * image.shape[0] / rows).astype(int), image.shape[0] - 1)
    col_index = np.minimum(((np.arange(cols) + 0.5) * image.shape[1] / cols).astype(int), image.shape[1] - 1)
    return image[row_index][:, col_index]


def _physical_resize(image: np.ndarray, row_mm: float, col_mm: float) -> np.ndarray:
    """Resize so that pixels are square in mm and the longer side has at least :data:`MIN_PANEL_PX` pixels."""
    height, width = image.shape[0] * row_mm, image.shape[1] * col_mm
    mm_per_px = min(row_mm, col_mm, max(height, width) / MIN_PANEL_PX)
    return _resize(image, max(1, round(height / mm_per_px)), max(1, round(width / mm_per_px)))


def _as_lps(array: np.ndarray, geometry: Geometry) -> tuple[np.ndarray, tuple[float, float, float]]:
    """``array`` ``(z, y, x)`` re-oriented so x runs right->left, y anterior->posterior, z inferior->superior."""
    image = sitk.GetImageFromArray(array)
    geometry.apply_to(image)
    oriented = sitk.DICOMOrient(image, "LPS")
    return sitk.GetArrayViewFromImage(oriented).copy(), tuple(oriented.GetSpacing())  # type: ignore[return-value]


def _colour_table(labels: np.ndarray, label_info: Sequence[Label]) -> np.ndarray:
    colors = np.zeros((int(labels.max()) + 1 if labels.size else 1, 3), dtype=np.float64)
    for label in label_info:
        if label.value < len(colors):
            colors[label.value] = label.color
    return colors


def overlay_panels(
    ct: np.ndarray, labels: np.ndarray, geometry: Geometry, label_info: Sequence[Label]
) -> dict[str, np.ndarray]:
    """Axial, coronal and sagittal planes through the labels' centre, each ``(rows, cols, 3)`` uint8.

    Radiological convention whatever the image's orientation: patient's right on the picture's left
    (axial, coronal), head up (coronal, sagittal), anterior on the left (sagittal). Pixels are square in mm
    (physical aspect kept) and each plane's longer side has at least :data:`MIN_PANEL_PX` pixels.

    Args:
        ct: the CT ``(z, y, x)`` in HU. labels: the label map ``(z, y, x)``. geometry: their geometry.
    """
    ct, (sx, sy, sz) = _as_lps(ct, geometry)
    labels, _ = _as_lps(labels, geometry)
    colors = _colour_table(labels, label_info)
    foreground = np.argwhere(labels > 0)
    z, y, x = foreground.mean(axis=0).astype(int) if len(foreground) else np.array(labels.shape) // 2
    axial = _blend(ct[z], labels[z], colors)  # rows: anterior -> posterior, columns: right -> left
    coronal = _blend(ct[:, y], labels[:, y], colors)[::-1]  # rows: superior -> inferior
    sagittal = _blend(ct[:, :, x], labels[:, :, x], colors)[::-1]  # columns: anterior -> posterior
    return {
        "axial": _physical_resize(axial, sy, sx),
        "coronal": _physical_resize(coronal, sz, sx),
        "sagittal": _physical_resize(sagittal, sz, sy),
    }


def legend_image(labels: np.ndarray, geometry: Geometry, label_info: Sequence[Label]) -> np.ndarray:
    """One row per label present in ``labels``: a swatch of its exact colour, its name and volume in ml.

    Rows are :data:`LEGEND_ROW_PX` pixels high under a title row; the swatch fills columns 8 to 8 + 7 * scale.
    """
    volumes = label_volumes_ml(labels, geometry, label_info)
    present = [label for label in label_info if volumes[label.name] > 0]
    lines = [f"{label.name}  {volumes[label.name]:.1f} ml" for label in present]
    width = 8 + 7 * FONT_SCALE + 8 + max([text_size(line, FONT_SCALE)[1] for line in [*lines, "labels"]]) + 8
    legend = np.zeros(((len(present) + 1) * LEGEND_ROW_PX + 4, width, 3), np.uint8)
    draw_text(legend, "labels" if present else "no labels", 4, 8, scale=FONT_SCALE)
    swatch = 7 * FONT_SCALE
    for row, (label, line) in enumerate(zip(present, lines, strict=True), start=1):
        top = row * LEGEND_ROW_PX + 4
        legend[top : top + swatch, 8 : 8 + swatch] = label.color
        draw_text(legend, line, top, 8 + swatch + 8, scale=FONT_SCALE)
    return legend


def _titled(panel: np.ndarray, title: str, left_mark: str, right_mark: str) -> np.ndarray:
    """``panel`` under a text row with its title and the patient side shown at its left and right edges."""
    header = np.zeros((LEGEND_ROW_PX, panel.shape[1], 3), np.uint8)
    draw_text(header, title, 4, (panel.shape[1] - text_size(title, FONT_SCALE)[1]) // 2, scale=FONT_SCALE)
    draw_text(header, left_mark, 4, 2, scale=FONT_SCALE)
    draw_text(header, right_mark, 4, panel.shape[1] - text_size(right_mark, FONT_SCALE)[1] - 2, scale=FONT_SCALE)
    return np.vstack([header, panel])


def overlay_image(ct: np.ndarray, labels: np.ndarray, geometry: Geometry, label_info: Sequence[Label]) -> np.ndarray:
    """:func:`overlay_panels` titled, side by side, then :func:`legend_image` on the right: ``(rows, cols, 3)`` uint8.

    The legend is the rightmost ``legend_image(...).shape[1]`` columns, top-aligned.
    """
    panels = overlay_panels(ct, labels, geometry, label_info)
    marks = {"axial": ("R", "L"), "coronal": ("R", "L"), "sagittal": ("A", "P")}
    parts = [_titled(panel, name, *marks[name]) for name, panel in panels.items()]
    parts.append(legend_image(labels, geometry, label_info))
    height = max(part.shape[0] for part in parts)
    columns: list[np.ndarray] = []
    for part in parts:
        if columns:
            columns.append(np.zeros((height, _GAP, 3), np.uint8))
        columns.append(np.vstack([part, np.zeros((height - part.shape[0], part.shape[1], 3), np.uint8)]))
    return np.concatenate(columns, axis=1)


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
