"""``TrainingRecipe``: the optimiser, sampling and augmentation knobs of a training, nnU-Net's by default.

nnU-Net fixes these in its trainer class (SGD 1e-2 with Nesterov momentum, poly LR, 33 % foreground
oversampling, rotation +-30 deg and scaling 0.7-1.4 with probability 0.2 each, mirroring on every axis, no
elastic deformation). A recipe changes them without a new trainer class, so every training keeps the one
results-folder name (``GASATrainer__<plans>__<configuration>``) and records its recipe in
``gasa_training.json``.

Example::

    >>> TrainingRecipe().optimizer, TrainingRecipe().initial_lr
    ('sgd', 0.01)
    >>> TrainingRecipe(optimizer="adamw", initial_lr=3e-3).to_json()["optimizer"]
    'adamw'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from GASACore.network import network_spec

__all__ = ["OPTIMIZERS", "TrainingRecipe", "recipe_for"]

#: ``sgd``: nnU-Net's SGD (momentum 0.99, Nesterov); ``adamw``: AdamW (betas 0.9 / 0.999).
OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainingRecipe:
    """How a trainer optimises and augments; the defaults are nnU-Net v2's.

    Attributes:
        optimizer: one of :data:`OPTIMIZERS`; both follow nnU-Net's poly learning-rate schedule.
        initial_lr: learning rate of the first epoch.
        weight_decay: L2 (SGD) or decoupled (AdamW) weight decay.
        oversample_foreground: share of each batch whose patches are centred on a foreground voxel (0-1).
        rotation_deg: largest rotation about each axis, degrees (3D, isotropic patches).
        p_rotation: probability that a patch is rotated.
        scaling: range of the zoom factor (> 1: smaller objects).
        p_scaling: probability that a patch is scaled.
        p_elastic: probability of an elastic deformation.
        mirror: random mirroring on every axis (and mirror test-time augmentation in the exported model);
            off for organs with a side (left / right kidney), as TotalSegmentator trains.
        p_contrast_phase: probability that a patch's organs get the HU shifts of a contrast phase
            (:mod:`train.training.phase_augmentation`); 0 turns it off.
        p_partial_fov: probability that a patch keeps only a random slab of the body, the rest padding
            (:mod:`train.training.fov_augmentation`: short scans, narrow fields of view); 0 turns it off.
    """

    optimizer: str = "sgd"
    initial_lr: float = 1e-2
    weight_decay: float = 3e-5
    oversample_foreground: float = 0.33
    rotation_deg: float = 30.0
    p_rotation: float = 0.2
    scaling: tuple[float, float] = (0.7, 1.4)
    p_scaling: float = 0.2
    p_elastic: float = 0.0
    mirror: bool = True
    p_contrast_phase: float = 0.0
    p_partial_fov: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if not (math.isfinite(self.initial_lr) and 0 < self.initial_lr <= 1):
            raise ValueError(f"initial_lr must be in (0, 1], got {self.initial_lr}")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay < 1):
            raise ValueError(f"weight_decay must be in [0, 1), got {self.weight_decay}")
        probabilities = ("oversample_foreground", "p_rotation", "p_scaling", "p_elastic")
        for name in (*probabilities, "p_contrast_phase", "p_partial_fov"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} is a probability in [0, 1], got {value}")
        if not 0 <= self.rotation_deg <= 180:
            raise ValueError(f"rotation_deg must be in [0, 180], got {self.rotation_deg}")
        low, high = self.scaling
        if not 0 < low <= high:
            raise ValueError(f"scaling must be a range 0 < low <= high, got {self.scaling}")

    @property
    def rotation_rad(self) -> tuple[float, float]:
        """``(-r, r)`` in radians, as nnU-Net's spatial transform takes it."""
        radians = math.radians(self.rotation_deg)
        return (-radians, radians)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> TrainingRecipe:
        """The recipe :meth:`to_json` wrote (unknown keys refused by name).

        >>> TrainingRecipe.from_json(TrainingRecipe(mirror=False).to_json()).mirror
        False
        """
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(record) - known)
        if unknown:
            raise ValueError(f"unknown training recipe fields {unknown}; known: {sorted(known)}")
        values = dict(record)
        if "scaling" in values:
            values["scaling"] = tuple(values["scaling"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (``gasa_training.json`` / ``model.json``)."""
        record = asdict(self)
        record["scaling"] = list(self.scaling)
        return record


def recipe_for(network: str, **given: Any) -> TrainingRecipe:
    """nnU-Net's recipe with a registered network's own defaults (nnMamba: lr 1e-4), the ``given`` fields over them.

    >>> recipe_for("nnmamba").initial_lr, recipe_for("nnmamba", initial_lr=1e-3).initial_lr
    (0.0001, 0.001)
    >>> recipe_for("vnet").initial_lr
    0.01
    """
    spec = network_spec(network)
    defaults = {"initial_lr": spec.initial_lr} if spec.initial_lr is not None else {}
    return TrainingRecipe(**{**defaults, **given})
