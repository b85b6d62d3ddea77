"""TotalSegmentator's recipe end to end: loopback server -> ``gasa-models fetch`` -> ``gasa-segment --offline``.

The models are built at test time in TotalSegmentator's release layout. Where a model must find organs it is
the bundled demo GASA-UNet (kidneys Dice 0.97 on the sample CT); the model run on the crop, and one composite
part, paint one class everywhere, so where they ran is known by construction. The expected label maps are
computed independently: the demo model run plainly (no recipe) and the crop box / merge worked out here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from catalog_support import write_catalog
from model_server import ModelServer
from test_acceptance import _run, _script
from totalseg_fixtures import (
    DEMO_BUNDLE,
    DEMO_CLASSES,
    catalog_labels,
    constant_model_folder,
    constant_model_zip,
    demo_bundle_zip,
    totalseg_recipe,
)

from GASACore.bundle import load_model
from GASACore.options import SegmentOptions
from GASACore.pipeline import segment
from GASACore.recipe import RunRecipe

CYST_FOLDER = "Dataset789_GASATestCysts/nnUNetTrainer_DASegOrd0_NoMirroring__nnUNetPlans__3d_fullres"
CYST_CLASSES = ("kidney_cyst_left", "kidney_cyst_right", "kidney_left", "kidney_right")  # 3, 4: auxiliary
ORGAN_FOLDER = "Dataset291_GASATestOrgans/nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres"


@pytest.fixture(scope="module")
def demo_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return demo_bundle_zip(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def demo_labels(example_ct: Path) -> np.ndarray:
    """The demo model's own label map of the sample CT (step 0.8, as the recipe runs it), BTCV values."""
    result = segment(example_ct, load_model(DEMO_BUNDLE), options=SegmentOptions(device="cpu", step_size=0.8))
    assert (result.labels == 2).sum() > 1000 and (result.labels == 3).sum() > 1000, "the demo finds both kidneys"
    return result.labels


def _remote(model_id: str, url: str, data: bytes, model_format: str, **extra) -> dict:
    return {"id": model_id, "version": "2.0.0", "title": model_id, "description": "a test model", "modality": "CT",
            "format": model_format, "url": url,
            "size": len(data), "sha256": None, "license": {"name": "Apache-2.0", "commercial_use": True},
            "citation": "GASASegmenter tests", "labelSet": "custom", **extra}  # fmt: skip


def _env(tmp_path: Path, catalog: Path) -> dict[str, str]:
    from catalog_support import REPO_ROOT

    home = tmp_path / "home"
    return {**os.environ, "GASA_HOME": str(home), "GASA_CATALOG": str(catalog), "PYTHONPATH": str(REPO_ROOT)}


def _segment_offline(example_ct: Path, output: Path, model: str, env: dict[str, str]) -> np.ndarray:
    done = _run([_script("gasa-segment"), str(example_ct), "-o", str(output), "-m", model, "--offline",
                 "--device", "cpu", "--progress", "none"], env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    source, labels = sitk.ReadImage(str(example_ct)), sitk.ReadImage(str(output))
    assert labels.GetSize() == source.GetSize()
    np.testing.assert_allclose(labels.GetSpacing(), source.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(labels.GetOrigin(), source.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(labels.GetDirection(), source.GetDirection(), atol=1e-6)
    return sitk.GetArrayFromImage(labels)


def test_the_crop_pre_pass_runs_the_model_on_the_kidney_box_plus_its_margin(
    tmp_path: Path, server: ModelServer, demo_zip: bytes, demo_labels: np.ndarray, example_ct: Path
) -> None:
    cysts = constant_model_zip(tmp_path / "cysts", dataset=CYST_FOLDER.split("/")[0],
                               trainer="nnUNetTrainer_DASegOrd0_NoMirroring", classes=CYST_CLASSES,
                               painted="kidney_cyst_left", spacing_zyx=(4.0, 4.0, 4.0))  # fmt: skip
    server.files.update({"/demo.zip": demo_zip, "/cysts.zip": cysts})
    structures = ["kidney_left", "kidney_right", "liver", "spleen"]
    rough = _remote("test-rough", server.url("/demo.zip"), demo_zip, "bundle", recipe=totalseg_recipe(0.8),
                    labels=catalog_labels(DEMO_CLASSES))  # fmt: skip
    crop = {"model": "test-rough", "structures": structures, "margin_mm": 20}
    fine = _remote("test-cysts", server.url("/cysts.zip"), cysts, "nnunet", folder=CYST_FOLDER, folds=["0"],
                   recipe=totalseg_recipe(0.5, crop=crop),
                   labels=catalog_labels({"kidney_cyst_left": 1, "kidney_cyst_right": 2}))  # fmt: skip
    env = _env(tmp_path, write_catalog(tmp_path / "catalog.json", rough, fine))

    fetched = _run([_script("gasa-models"), "fetch", "test-cysts", "--progress", "none"], env)
    assert fetched.returncode == 0, fetched.stderr
    assert sorted(p.name for p in (tmp_path / "home" / "models").iterdir()) == ["test-cysts", "test-rough"]
    labels = _segment_offline(example_ct, tmp_path / "cysts.nii.gz", "test-cysts", env)

    spacing = sitk.ReadImage(str(example_ct)).GetSpacing()[::-1]  # (z, y, x)
    found = np.argwhere(np.isin(demo_labels, [DEMO_CLASSES[s] for s in structures]))
    margin = [int(20 / s) for s in spacing]  # TotalSegmentator: mm -> whole voxels, rounded down
    low = np.maximum(found.min(axis=0) - margin, 0)
    high = np.minimum(found.max(axis=0) + 1 + margin, demo_labels.shape)
    expected = np.zeros(demo_labels.shape, dtype=np.uint8)
    expected[low[0] : high[0], low[1] : high[1], low[2] : high[2]] = 1
    assert 0 < expected.sum() < expected.size, "the box is a real crop of the CT"
    np.testing.assert_array_equal(labels, expected)


def test_gasa_segment_runs_the_abdomen_composite_once_its_parts_are_installed(
    tmp_path: Path, server: ModelServer, demo_zip: bytes, demo_labels: np.ndarray, example_ct: Path
) -> None:
    """A hospital catalogue mirrors the two parts of the bundled ``totalseg-abdomen`` (same ids and versions) with
    test models: the organ part paints liver everywhere, the cardiac part is the demo model; they overlap. As in
    TotalSegmentator, a class the composite does not list (the demo's gallbladder here) overwrites in the merge
    and is dropped after it."""
    organs = constant_model_zip(tmp_path / "organs", dataset=ORGAN_FOLDER.split("/")[0],
                                trainer="nnUNetTrainerNoMirroring", classes=("spleen", "kidney_right", "liver"),
                                painted="liver", spacing_zyx=(6.0, 6.0, 6.0))  # fmt: skip
    server.files.update({"/organs.zip": organs, "/demo.zip": demo_zip})
    mirror = [
        _remote("totalseg-organs", server.url("/organs.zip"), organs, "nnunet", folder=ORGAN_FOLDER,
                recipe=totalseg_recipe(0.8)),
        _remote("totalseg-cardiac", server.url("/demo.zip"), demo_zip, "bundle", recipe=totalseg_recipe(0.8),
                labels=catalog_labels({**DEMO_CLASSES, "demo_gallbladder": 4})),  # not in the composite
    ]  # fmt: skip
    env = _env(tmp_path, write_catalog(tmp_path / "hospital.json", *mirror))

    listed = {m["id"]: m for m in json.loads(_run([_script("gasa-models"), "list", "--json"], env).stdout)}
    assert not listed["totalseg-abdomen"]["available"]
    assert listed["totalseg-abdomen"]["missing"] == ["totalseg-organs@2.0.0", "totalseg-cardiac@2.0.0"]
    fetched = _run([_script("gasa-models"), "fetch", "totalseg-abdomen", "--progress", "none"], env)
    assert fetched.returncode == 0, fetched.stderr
    listed = {m["id"]: m for m in json.loads(_run([_script("gasa-models"), "list", "--json"], env).stdout)}
    assert listed["totalseg-abdomen"]["available"] and listed["totalseg-abdomen"]["missing"] == []
    labels = _segment_offline(example_ct, tmp_path / "abdomen.nii.gz", "totalseg-abdomen", env)

    total_numbering = {1: 1, 2: 2, 3: 3, 6: 5, 8: 52}  # the demo's BTCV values -> the composite's (liver 5, aorta 52)
    cardiac = np.zeros_like(demo_labels)
    for btcv, total in total_numbering.items():
        cardiac[demo_labels == btcv] = total
    expected = np.where(cardiac != 0, cardiac, 5)  # the later part wins wherever it paints
    expected[demo_labels == 4] = 0  # a class the composite does not list still wins the merge, then is dropped
    assert (demo_labels == 4).sum() > 0
    np.testing.assert_array_equal(labels, expected)
    assert {2, 3, 5, 52} <= set(np.unique(labels).tolist())


@pytest.mark.parametrize(("painted", "expected"), [("kidney_left", 0), ("kidney_cyst_right", 2)])
def test_auxiliary_labels_are_dropped_and_a_turned_input_keeps_its_own_grid(
    tmp_path: Path, example_ct: Path, painted: str, expected: int
) -> None:
    """789's auxiliary kidney labels (3, 4) are not in the entry: dropped. An input stored neither RAS nor with
    (z, y, x) sizes in order is turned to RAS, resampled (3 -> 6 mm), and its labels come back on its own grid."""
    dataset, trainer = CYST_FOLDER.split("/")[0], "nnUNetTrainer_DASegOrd0_NoMirroring"
    folder = constant_model_folder(tmp_path, dataset=dataset, trainer=trainer, classes=CYST_CLASSES, painted=painted,
                                   spacing_zyx=(6.0, 6.0, 6.0))  # fmt: skip
    recipe = RunRecipe(name="totalsegmentator", orientation="RAS", resample_order=1, step_size=0.8, mirroring=False,
                       value_map=((1, 1), (2, 2)))  # fmt: skip
    model = dataclasses.replace(load_model(folder), recipe=recipe)
    turned = tmp_path / "turned.nii.gz"
    sitk.WriteImage(sitk.Flip(sitk.PermuteAxes(sitk.ReadImage(str(example_ct)), [1, 2, 0]), [True, False, True]),
                    str(turned))  # fmt: skip
    result = segment(turned, model, options=SegmentOptions(device="cpu"))
    size = sitk.ReadImage(str(turned)).GetSize()
    assert result.labels.shape == tuple(reversed(size)) and result.geometry.size == size
    assert (result.labels == expected).all()
