"""The demo model: a small GASA-UNet trained on CPU on one real CT, exported as a bundle.

Recipe (``python -m train.demo``; about 70 minutes on 2 CPU cores):

1. convert: TotalSegmentator's public example CT (``example_ct.nii.gz``, 3 mm, abdomen + pelvis) and its
   label map (``example_seg_fast_force_split.nii.gz``, made by TotalSegmentator's model) -> an nnU-Net raw
   data set with the BTCV 13-organ numbering (``TOTALSEG_TO_BTCV``; the esophagus is outside the scan).
2. plan: nnU-Net's fingerprint, CT normalisation and pre-processing at 3 mm (the sample's spacing, near the
   3-5 mm of typical clinical abdominal CT), then a CPU-sized network set in the plans (:class:`DemoRecipe`):
   patch 64^3, batch 2, 5 stages of 2 convolutions each, features 8-16-32-64-128, the GASA block at the
   4^3 bottleneck with the paper's options.
3. train: nnU-Net's trainer (Dice + CE, deep supervision, poly LR, its intensity augmentation) with the demo's
   :class:`~train.training.TrainingRecipe`: AdamW 3e-3, foreground oversampling 0.66, rotation +-20 deg and
   scaling 0.8-1.25 (probability 0.3 each), elastic deformation 0.1, no mirroring (the organs have sides),
   and contrast-phase augmentation (per-organ HU shifts of native / arterial / portal venous scans,
   :mod:`train.training.phase_augmentation`) on 60 % of the patches, partial fields of view (a random slab
   of the patch kept, the rest padding, as in short scans: :mod:`train.training.fov_augmentation`) on 30 %;
   fold ``all`` (the single case),
   95 epochs x 20 iterations; then nnU-Net's validation = Dice on the training CT itself.
4. export: ``Resources/models/gasa-demo-btcv`` with the truthful record: one training CT, labels by a
   model, demonstration only, not for clinical use.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.training.recipe import TrainingRecipe

__all__ = ["DemoRecipe", "make_demo_model"]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASET_ID = 900
#: Version of the demo bundle this recipe makes (0.1: 4 mm, 40 epochs of nnU-Net's recipe; 0.2: this recipe).
DEMO_VERSION = "0.2.0"
DATASET_NAME = "TotalSegExampleBTCV"
SOURCE_NOTE = (
    "TotalSegmentator example CT (wasserth/TotalSegmentator, tests/reference_files/example_ct.nii.gz, "
    "commit 0e65a448d557382b1e925276212b3bec7f5aff83, Apache-2.0): one non-contrast abdomen + pelvis CT, "
    "3 mm isotropic, 122 x 101 x 112 voxels"
)


@dataclass(frozen=True)
class DemoRecipe:
    """The demo's plan, network, training recipe and schedule (see the module docstring)."""

    target_spacing: tuple[float, float, float] = (3.0, 3.0, 3.0)
    patch_size: tuple[int, int, int] = (64, 64, 64)
    features: tuple[int, ...] = (8, 16, 32, 64, 128)
    batch_size: int = 2
    epochs: int = 95
    iterations: int = 20
    val_iterations: int = 2
    augmentation_workers: int = 1
    training: TrainingRecipe = field(
        default_factory=lambda: TrainingRecipe(
            optimizer="adamw",
            initial_lr=3e-3,
            weight_decay=3e-5,
            oversample_foreground=0.66,
            rotation_deg=20.0,
            p_rotation=0.3,
            scaling=(0.8, 1.25),
            p_scaling=0.3,
            p_elastic=0.1,
            mirror=False,
            p_contrast_phase=0.6,
            p_partial_fov=0.3,
        )
    )


def set_demo_network(plans: dict[str, Any], recipe: DemoRecipe, configuration: str = "3d_fullres") -> dict[str, Any]:
    """Write the recipe's patch, batch and U-Net (stages, features, strides, kernels) into nnU-Net plans.

    Every stage halves each axis after the first, so the patch must divide by ``2 ** (stages - 1)``.
    """
    stages = len(recipe.features)
    factor = 2 ** (stages - 1)
    if any(p % factor for p in recipe.patch_size):
        raise ValueError(f"patch {recipe.patch_size} must divide by {factor} for {stages} stages")
    plans = json.loads(json.dumps(plans))
    config = plans["configurations"][configuration]
    config["patch_size"] = list(recipe.patch_size)
    config["batch_size"] = recipe.batch_size
    kwargs = config["architecture"]["arch_kwargs"]
    kwargs["n_stages"] = stages
    kwargs["features_per_stage"] = list(recipe.features)
    kwargs["kernel_sizes"] = [[3, 3, 3]] * stages
    kwargs["strides"] = [[1, 1, 1]] + [[2, 2, 2]] * (stages - 1)
    kwargs["n_conv_per_stage"] = [2] * stages
    kwargs["n_conv_per_stage_decoder"] = [2] * (stages - 1)
    return plans


def _shared_ct_folder() -> Path:
    candidates = [Path(os.environ["GASA_SHARED_DATA"])] if "GASA_SHARED_DATA" in os.environ else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for candidate in candidates:
        folder = candidate / "totalsegmentator"
        if (folder / "example_ct.nii.gz").is_file() and (folder / "example_seg_fast_force_split.nii.gz").is_file():
            return folder
    raise FileNotFoundError(f"TotalSegmentator example CT + labels not found under {[str(c) for c in candidates]}")


def _training_orientation() -> str:
    """The training CT's orientation code: the model trains without mirroring, so inputs are turned to it."""
    import SimpleITK as sitk

    from GASACore.preprocessing.orientation import orientation_code

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(_shared_ct_folder() / "example_ct.nii.gz"))
    reader.ReadImageInformation()
    return orientation_code(reader.GetDirection())


def _convert(workdir: Path) -> Path:
    from GASACore.labels import LABEL_SETS
    from train.datasets import TOTALSEG_TO_BTCV, convert_pairs
    from train.datasets.writer import labels_of

    source = _shared_ct_folder()
    pairs = workdir / "pairs"
    for sub, name in (("images", "example_ct.nii.gz"), ("labels", "example_seg_fast_force_split.nii.gz")):
        (pairs / sub).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, pairs / sub / "example_ct.nii.gz")
    return convert_pairs(
        pairs / "images",
        pairs / "labels",
        workdir / "raw",
        labels=labels_of(LABEL_SETS["btcv"]),
        remap=TOTALSEG_TO_BTCV,
        dataset_id=DATASET_ID,
        name=DATASET_NAME,
        link=False,
        overwrite=True,
    )


def _training_extra(recipe: DemoRecipe, results: Path, note: str | None) -> dict[str, Any]:
    summary_path = results / "fold_all" / "validation" / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    return {
        "demonstration_only": True,
        "caveats": [
            "Trained on ONE CT: the TotalSegmentator example scan (non-contrast, abdomen + pelvis). Contrast-phase and "
            "field-of-view augmentation widen what it has seen, but one patient cannot show the variety of real "
            "anatomy, scanners and protocols: expect it to miss or mislabel organs on new scans.",
            "Reference labels were produced by TotalSegmentator's model (checked by eye by its author), not drawn by "
            "experts; mapped to the BTCV numbering. The esophagus (label 5) is outside the scan and never trained.",
            "The Dice values are measured on the training CT itself (nnU-Net validation of fold 'all'): they show "
            "that training worked, not how the model performs on new scans.",
            "NOT FOR CLINICAL USE.",
        ],
        "training_data_source": SOURCE_NOTE,
        "demo_recipe": {
            "command": "python -m train.demo",
            "target_spacing_mm": list(recipe.target_spacing),
            "patch_size": list(recipe.patch_size),
            "features_per_stage": list(recipe.features),
            "batch_size": recipe.batch_size,
            "epochs": recipe.epochs,
            "iterations_per_epoch": recipe.iterations,
            "training_recipe": recipe.training.to_json(),
            "device": "cpu",
        },
        "dice_on_training_ct": {
            str(k): v.get("Dice") for k, v in summary.get("mean", {}).items() if v.get("Dice") == v.get("Dice")
        },
        "note": note,
    }


def make_demo_model(
    target: Path,
    *,
    workdir: Path | None = None,
    recipe: DemoRecipe | None = None,
    overwrite: bool = False,
    resume: bool = False,
    export_only: bool = False,
    note: str | None = None,
) -> Path:
    """Run the whole recipe and write the bundle to ``target``; returns the bundle folder.

    ``resume`` continues a training in ``workdir``; ``export_only`` exports its finished training again
    (e.g. after a change of the record's text) without training.
    """
    from GASACore.network import GASABlockOptions
    from train.planning import PlannerSettings, configure_nnunet_paths, run_planning, write_gasa_plans

    recipe = recipe or DemoRecipe()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace the demo bundle")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="gasa-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("nnUNet_def_n_proc", "1")
    os.environ["nnUNet_n_proc_DA"] = str(recipe.augmentation_workers)  # noqa: SIM112 - nnU-Net's spelling
    configure_nnunet_paths(workdir / "raw", workdir / "preprocessed", workdir / "results")
    if not (resume or export_only):
        logger.info("1/4 convert -> %s", _convert(workdir))
        settings = PlannerSettings(target_spacing=recipe.target_spacing)
        planned = run_planning(DATASET_ID, settings=settings, variants=(), num_processes=1)
        plans = json.loads(planned.base_plans.read_text(encoding="utf-8"))
        planned.base_plans.write_text(json.dumps(set_demo_network(plans, recipe), indent=4) + "\n", encoding="utf-8")
        gasa, parameters = write_gasa_plans(
            planned.base_plans.parent, variants=("gasa-unet",), options=GASABlockOptions()
        )
        logger.info("2/4 plans %s (%s parameters)", gasa, parameters)
    from train.training import Schedule, results_folder, run_gasa_training

    if export_only:
        folder = results_folder(f"Dataset{DATASET_ID}_{DATASET_NAME}", "gasa-unet")
        if not (folder / "fold_all" / "checkpoint_final.pth").is_file():
            raise FileNotFoundError(f"no finished training in {folder}: train first (without --export-only)")
        return _export(folder, target, recipe, note)
    schedule = Schedule(recipe.epochs, recipe.iterations, recipe.val_iterations, save_every=5)
    run = run_gasa_training(
        DATASET_ID,
        variant="gasa-unet",
        fold="all",
        device="cpu",
        schedule=schedule,
        continue_training=resume,
        recipe=recipe.training,
    )
    logger.info("3/4 trained in %.0f s", run.wall_time_s)
    return _export(run.results_folder, target, recipe, note)


def _export(results: Path, target: Path, recipe: DemoRecipe, note: str | None) -> Path:
    from train.export import export_results_folder

    if target.exists():
        shutil.rmtree(target)
    metadata = {
        "name": "gasa-demo-btcv",
        "version": DEMO_VERSION,
        "description": (
            "DEMONSTRATION model, not for clinical use: a small GASA-UNet (3 mm, 64^3 patch, features 8-128) "
            "trained on 2 CPU cores on a single CT (the TotalSegmentator example scan) with labels produced by "
            "TotalSegmentator's model, mapped to the 13 BTCV organs, with contrast-phase and partial field-of-view "
            "augmentation. It shows the pipeline end to end; on new scans it is far weaker than on its training CT."
        ),
        "license": "Apache-2.0 (training data: TotalSegmentator example files, Apache-2.0)",
        "intended_use": "software demonstration and tests only; NOT for clinical or research use",
    }
    bundle = export_results_folder(
        results,
        target,
        label_set="btcv",
        metadata=metadata,
        training_extra=_training_extra(recipe, results, note),
        orientation=_training_orientation(),
    )
    logger.info("4/4 bundle %s", bundle.root)
    return bundle.root
