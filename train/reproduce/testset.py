"""The paper's protocol on a held-out test set: the fold ensemble of each row and seed predicts it.

"We conducted 5-fold cross-validation on all models, averaging their softmax output across folds" (the
paper's Evaluation): with a test set (``--test-images`` / ``--test-labels``, or ``imagesTs`` and
``labelsTs`` of the raw data set when both exist) every exported bundle of a row and seed
(:mod:`train.reproduce.bundles`) segments each test image through GASACore's engine
(:func:`GASACore.pipeline.segment`: the folds' probabilities averaged, mirroring test-time augmentation as
the paper), and the label maps are scored as the validation cases are
(:func:`train.reproduce.execute.metrics_record`). Predictions are kept, so an interrupted evaluation
continues where it stopped.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from train.reproduce.execute import metrics_record, reference_subset
from train.reproduce.state import ReproductionState

__all__ = ["evaluate_test_set", "list_test_images"]

logger = logging.getLogger(__name__)

_CHANNEL = "_0000"  # nnU-Net's suffix of a case's first (here: only) channel


def list_test_images(folder: Path) -> dict[str, Path]:
    """Test images by case id: ``case_0000.nii.gz`` (nnU-Net's ``imagesTs``) or ``case.nii.gz`` -> ``case``.

    Raises:
        ValueError: no image, or a second channel (``case_0001``): the engine takes one CT channel.
    """
    from train.evaluation.evaluate import list_label_maps

    found = {}
    for name, path in list_label_maps(folder).items():
        channel = re.search(r"_\d{4}$", name)
        if channel is not None and channel.group() != _CHANNEL:
            raise ValueError(f"test images must have one channel ({_CHANNEL}), got {path.name} in {folder}")
        found[name[: -len(_CHANNEL)] if channel is not None else name] = path
    if not found:
        raise ValueError(f"expected test images in {folder}, found none")
    return found


def _predict(bundle: Path, images: dict[str, Path], target: Path, device: str) -> Path:
    from GASACore.bundle import load_model
    from GASACore.io import write_label_map
    from GASACore.options import SegmentOptions
    from GASACore.pipeline import segment

    model = load_model(bundle)
    options = SegmentOptions(device=device)
    target.mkdir(parents=True, exist_ok=True)
    for case_id, image in images.items():
        output = target / f"{case_id}.nii.gz"
        if output.is_file():
            continue
        result = segment(image, model, options=options)
        write_label_map(result.labels, result.geometry, output)
        logger.info("predicted %s with %s", case_id, bundle.name)
    return target


def evaluate_test_set(
    state: ReproductionState, folder: Path, images: Path, labels: Path, *, device: str, label_set: str
) -> dict[str, dict[str, Any]]:
    """Predict and score the test set with every bundle of ``state`` not evaluated yet; returns the new records.

    Records go to ``state.tests`` (``network/seed_S`` -> ``network``, ``seed`` and the metrics of
    :func:`~train.reproduce.execute.metrics_record`), saved after each bundle.

    Raises:
        ValueError: no test images, or a test image without a reference label map.
    """
    cases = list_test_images(images)
    new: dict[str, dict[str, Any]] = {}
    for key, bundle in sorted(state.bundles.items()):
        if key in state.tests:
            continue
        network, seed = key.rsplit("/seed_", 1)
        predictions = _predict(Path(bundle), cases, folder / "test" / key / "predictions", device)
        out = folder / "test" / key
        references = reference_subset(labels, predictions, out / "reference")
        record = metrics_record(predictions, references, out, label_set)
        state.classes = record.pop("classes")
        state.tests[key] = new[key] = {"network": network, "seed": int(seed), **record}
        state.save()
        logger.info("test set, %s: Dice %.4f, NSD %.4f", key, record["dice"] or 0.0, record["nsd"] or 0.0)
    return new
