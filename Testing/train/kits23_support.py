"""A tiny KiTS23-layout data set made from the real sample CT, planned once per session (ResEnc-L planner).

``case_XXXXX/imaging.nii.gz`` + ``segmentation.nii.gz`` as the kits23 repository lays them out. The CT and the
kidneys are real (the sample CT and TotalSegmentator's kidney labels, right and left merged into KiTS23's
kidney = 1); the kidney masses are synthetic, since no public kidney-tumour case is in the shared data: a
12 mm tumour (label 2, 60 +- 10 HU) in one kidney and a 9 mm cyst (label 3, water: 8 +- 5 HU) in the other,
sides swapped between the two cases. Cropped around the kidneys and decimated to 6 mm so nnU-Net trains on it
in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from Testing.train.test_pipeline_support import cli_env, run_cli

__all__ = ["KITS_DATASET", "KITS_PLAN", "planned_kits23", "write_tiny_kits23"]

KITS_DATASET = "Dataset992_TinyKiTS"
#: nnU-Net's ResEnc-L planner, sized for CPU (the DIAG kidney model is a ResEnc-L model).
KITS_PLAN = ["--planner", "resenc-l", "--gpu-memory-gb", "0.1", "--base-features", "4", "--max-features", "32",
             "--gasa-dim", "8", "--gasa-heads", "2", "-j", "1", "--variants", "gasa-l"]  # fmt: skip
_RIGHT_KIDNEY, _LEFT_KIDNEY = 2, 3  # TotalSegmentator ids
_STEP, _MARGIN = 2, 8  # decimation and crop margin (voxels of the 3 mm CT)


def _ball(shape: tuple[int, ...], centre: np.ndarray, radius_mm: float, spacing_zyx: np.ndarray) -> np.ndarray:
    grid = np.indices(shape).reshape(3, -1).T
    distance = np.linalg.norm((grid - centre) * spacing_zyx, axis=1)
    return (distance <= radius_mm).reshape(shape)


def _inner_voxel(mask: np.ndarray) -> np.ndarray:
    """The voxel of ``mask`` nearest its centroid (a kidney's centroid may lie in its hilum, outside it)."""
    voxels = np.argwhere(mask)
    return voxels[np.argmin(np.linalg.norm(voxels - voxels.mean(axis=0), axis=1))]


def write_tiny_kits23(shared_data: Path, target: Path, *, offsets: tuple[int, ...] = (0, 1)) -> Path:
    """Write ``target/dataset/case_0000N/{imaging,segmentation}.nii.gz``; returns ``target`` (the kits23 root)."""
    source = shared_data / "totalsegmentator"
    ct = sitk.ReadImage(str(source / "example_ct.nii.gz"))
    total = sitk.GetArrayFromImage(sitk.ReadImage(str(source / "example_seg_fast_force_split.nii.gz")))
    hu = sitk.GetArrayFromImage(ct).astype(np.int16)
    spacing_zyx = np.array(ct.GetSpacing()[::-1])
    kidneys = np.isin(total, (_RIGHT_KIDNEY, _LEFT_KIDNEY))
    low = np.maximum(np.argwhere(kidneys).min(axis=0) - _MARGIN, 0)
    high = np.minimum(np.argwhere(kidneys).max(axis=0) + _MARGIN + 1, hu.shape)
    rng = np.random.default_rng(23)
    for index, offset in enumerate(offsets):
        labels = kidneys.astype(np.uint8)
        image = hu.copy()
        tumour_side, cyst_side = (_RIGHT_KIDNEY, _LEFT_KIDNEY) if index % 2 == 0 else (_LEFT_KIDNEY, _RIGHT_KIDNEY)
        for side, value, radius, mean, sd in ((tumour_side, 2, 12.0, 60, 10), (cyst_side, 3, 9.0, 8, 5)):
            ball = _ball(hu.shape, _inner_voxel(total == side), radius, spacing_zyx)
            labels[ball] = value
            image[ball] = rng.normal(mean, sd, int(ball.sum())).astype(np.int16)
        window = tuple(slice(int(lo) + offset, int(hi), _STEP) for lo, hi in zip(low, high, strict=True))
        case = target / "dataset" / f"case_{index:05d}"
        case.mkdir(parents=True, exist_ok=True)
        start = [int(lo) + offset for lo in low[::-1]]  # x, y, z index of the window's first voxel
        for array, name in ((image, "imaging"), (labels, "segmentation")):
            written = sitk.GetImageFromArray(np.ascontiguousarray(array[window]))
            written.SetSpacing([s * _STEP for s in ct.GetSpacing()])
            written.SetDirection(ct.GetDirection())
            written.SetOrigin(ct.TransformIndexToPhysicalPoint(start))
            sitk.WriteImage(written, str(case / f"{name}.nii.gz"))
    return target


@pytest.fixture(scope="session")
def planned_kits23(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """``gasa-train convert kits23`` + ``plan --planner resenc-l`` of the tiny KiTS23 set; the nnU-Net root."""
    root = tmp_path_factory.getbasetemp() / "gasa_train_kits23"
    done = root / "planned.ok"
    if done.is_file():
        return root
    root.mkdir(exist_ok=True)
    env = cli_env(root)
    kits = write_tiny_kits23(shared_data, root / "kits23")
    run_cli(["convert", "kits23", str(kits), "--dataset-id", "992", "--name", "TinyKiTS", "--target", str(root / "raw"),
             "--copy"], env)  # fmt: skip
    run_cli(["plan", "992", *KITS_PLAN], env)
    done.write_text("ok", encoding="utf-8")
    return root
