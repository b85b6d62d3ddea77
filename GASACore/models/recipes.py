"""Catalogue entries with a publisher's recipe, loaded as models the pipeline runs that way.

:func:`load_entry_model` turns an entry whose ``recipe`` is not plain nnU-Net (TotalSegmentator's), or a
composite entry, into a :class:`~GASACore.bundle.ModelBundle` carrying a :class:`~GASACore.recipe.RunRecipe`:

* ``totalsegmentator``: canonical (RAS) orientation, resampling to the model's spacing with the entry's
  ``resample_order`` (TotalSegmentator's default 1), the entry's step size and mirroring; the labels the
  entry lists are kept under its numbering, the others (TotalSegmentator's auxiliary labels) dropped; a
  ``crop`` loads its pre-pass model (another catalogue entry, with its own recipe) and finds the crop's
  structures among that model's class names;
* ``composite``: every part loaded so, each part's labels renumbered into the composite's by class name
  (``source_name``); the parts run in order and a later part overwrites an earlier one, as TotalSegmentator
  merges its parts; classes the composite does not list take part in the merge under spare values (so
  they overwrite as in TotalSegmentator) and are dropped after it.

Class names are compared as TotalSegmentator writes them (``kidney_left``): the entry's ``source_name``, else
its ``name``, else the model's own (dataset.json) label name; case and spaces vs underscores do not count.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Sequence

from GASACore.bundle.model import ModelBundle
from GASACore.bundle.store import load_model
from GASACore.errors import ModelError
from GASACore.models.catalog import Catalog
from GASACore.models.download import CancelSignal, ProgressCallback
from GASACore.models.entry import CatalogEntry, ModelFormat
from GASACore.recipe import CropPass, RunRecipe

__all__ = ["TOTALSEGMENTATOR_RESAMPLE_ORDER", "class_values", "load_entry_model", "needs_recipe"]

logger = logging.getLogger(__name__)

#: TotalSegmentator's image interpolation order when an entry gives none (``resampling_order=1`` since 2.16).
TOTALSEGMENTATOR_RESAMPLE_ORDER = 1


def needs_recipe(entry: CatalogEntry) -> bool:
    """Whether the entry runs other than as plain nnU-Net (a recipe of its own, or parts to merge)."""
    return entry.format is ModelFormat.COMPOSITE or entry.recipe.name != "nnunet"


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def class_values(entry: CatalogEntry, model: ModelBundle) -> dict[str, int]:
    """Class name -> the value ``model`` (loaded for ``entry``) paints it with, in the entry's numbering."""
    if entry.labels:
        return {_key(label.source_name or label.name): label.value for label in entry.labels}
    return {_key(label.name): label.value for label in model.labels}


def _compose(first: Sequence[tuple[int, int]] | None, then: dict[int, int]) -> tuple[tuple[int, int], ...]:
    """``first`` (or the identity) followed by ``then``; values ``then`` does not map are dropped."""
    pairs = first if first is not None else [(value, value) for value in then]
    return tuple((source, then[middle]) for source, middle in pairs if middle in then)


def _crop_pass(entry: CatalogEntry, catalog: Catalog, load: Callable[[CatalogEntry], ModelBundle]) -> CropPass:
    crop = dict(entry.recipe.crop or {})
    crop_entry = catalog.get(str(crop["model"]))
    if crop_entry.format is ModelFormat.COMPOSITE:
        raise ModelError(f"{entry.spec}'s crop model {crop_entry.spec} is composite; a crop pre-pass runs one model")
    crop_model = load(crop_entry)
    names = class_values(crop_entry, crop_model)
    structures = [str(s) for s in crop["structures"]]
    missing = [s for s in structures if _key(s) not in names]
    if missing:
        raise ModelError(
            f"{entry.spec}'s crop pre-pass needs structures {missing} from {crop_entry.spec}, which paints "
            f"{sorted(names)}"
        )
    return CropPass(crop_model, tuple(names[_key(s)] for s in structures), float(crop["margin_mm"]))


def _with_recipe(
    entry: CatalogEntry, model: ModelBundle, catalog: Catalog, load: Callable[[CatalogEntry], ModelBundle]
) -> ModelBundle:
    """``model`` configured by ``entry``'s recipe, with the entry's labels (others dropped)."""
    spec = entry.recipe
    if spec.name != "totalsegmentator":
        raise ModelError(f"cannot run {entry.spec}: recipe {spec.name!r} is not implemented")
    recipe = RunRecipe(
        name=spec.name,
        orientation="RAS" if spec.canonical_orientation is not False else None,
        resample_order=spec.resample_order if spec.resample_order is not None else TOTALSEGMENTATOR_RESAMPLE_ORDER,
        intensity_dtype=spec.intensity_dtype or "int32",
        step_size=spec.step_size,
        mirroring=spec.mirroring,
        crop=_crop_pass(entry, catalog, load) if spec.crop else None,
        value_map=tuple((label.value, label.value) for label in entry.labels) if entry.labels else None,
    )
    if spec.split_large_volumes:
        logger.debug("%s: volumes are not split into z-parts (the sliding window needs no split)", entry.spec)
    labels = tuple(label.to_label() for label in entry.labels) if entry.labels else model.labels
    return dataclasses.replace(model, labels=labels, recipe=recipe)


def _composite(entry: CatalogEntry, catalog: Catalog, load: Callable[[CatalogEntry], ModelBundle]) -> ModelBundle:
    if not entry.labels:
        raise ModelError(f"composite model {entry.spec} lists no labels: it needs them to merge its parts")
    targets = {_key(label.source_name or label.name): label.value for label in entry.labels}
    spare = itertools.count(max(targets.values()) + 1)  # classes the composite drops, kept apart until merged
    parts = []
    for part_entry in catalog.parts_of(entry):
        part = load(part_entry)
        names = class_values(part_entry, part)
        if not set(names) & set(targets):
            raise ModelError(f"part {part_entry.spec} of {entry.spec} paints none of the composite's classes")
        renumber = {value: targets[name] if name in targets else next(spare) for name, value in names.items()}
        recipe = part.recipe or RunRecipe(name="nnunet")
        value_map = _compose(recipe.value_map, renumber)
        parts.append(dataclasses.replace(part, recipe=dataclasses.replace(recipe, value_map=value_map)))
    carrier = parts[0]
    metadata = {**carrier.metadata, "name": entry.id, "description": entry.title, "parts": [p.name for p in parts]}
    kept = tuple((value, value) for value in sorted(targets.values()))
    return dataclasses.replace(
        carrier,
        metadata=metadata,
        labels=tuple(label.to_label() for label in entry.labels),
        recipe=RunRecipe(name=entry.recipe.name, parts=tuple(parts), value_map=kept),
    )


def load_entry_model(
    entry: CatalogEntry,
    catalog: Catalog,
    *,
    folds: Sequence[str | int] | None = None,
    offline: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelSignal | None = None,
) -> ModelBundle:
    """A catalogue entry loaded (downloaded first unless installed or ``offline``) with its recipe.

    Args:
        entry: any entry; plain nnU-Net entries come back with the catalogue's label names only.
        catalog: where parts and crop models are looked up.
        folds: folds to run (default: the entry's ``folds``, else every fold).
        offline, progress, cancel: as :func:`GASACore.models.resolve_model`, for the entry and every model it needs.

    Raises:
        ModelError: a part or crop model missing from the catalogue or not painting what is needed;
            OfflineError; the download's errors.
    """
    from GASACore.models.resolve import resolve_model, with_catalog_labels

    def load(item: CatalogEntry) -> ModelBundle:
        if item.format is ModelFormat.COMPOSITE:
            return _composite(item, catalog, load)
        path = resolve_model(item.spec, offline=offline, progress=progress, cancel=cancel, catalog=catalog)
        model = load_model(path, folds=list(folds or item.folds) or None)
        if not needs_recipe(item):
            return with_catalog_labels(model, item)
        return _with_recipe(item, model, catalog, load)

    return load(entry)
