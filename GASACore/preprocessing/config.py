"""Pre-processing configuration: what a model was trained on, as nnU-Net v2 plans describe it.

Spacings and shapes in this module are in nnU-Net's *transposed* array order: the input image
``(z, y, x)`` (SimpleITK order) is transposed with ``transpose_forward`` before anything else, and
the resulting axes are called ``(X, Y, Z)`` (X = axis 0 of the network input). Spacings are in mm.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

__all__ = [
    "SCHEMA_VERSION",
    "IntensityProperties",
    "NormalizationScheme",
    "PreprocessingConfig",
    "ResamplingOrders",
]

logger = logging.getLogger(__name__)

#: Version of the JSON written by ``PreprocessingConfig.to_json``.
SCHEMA_VERSION = 1

_NNUNET_RESAMPLING_FN = "resample_data_or_seg_to_shape"
_NNUNET_CHANNEL_ALIASES = {
    "ct": "CTNormalization",
    "nonorm": "NoNormalization",
    "zscore": "ZScoreNormalization",
    "rescale_to_0_1": "RescaleTo01Normalization",
    "rgb_to_0_1": "RGBTo01Normalization",
}


class NormalizationScheme(str, Enum):
    """Intensity normalisation of one input channel, named as nnU-Net v2 names its classes."""

    CT = "CTNormalization"
    ZSCORE = "ZScoreNormalization"
    NONE = "NoNormalization"
    RESCALE_TO_01 = "RescaleTo01Normalization"
    RGB_TO_01 = "RGBTo01Normalization"

    @classmethod
    def parse(cls, value: str | NormalizationScheme) -> NormalizationScheme:
        """The scheme for a class name (``"CTNormalization"``) or an nnU-Net channel alias (``"CT"``).

        Raises:
            ValueError: the name is none of the five nnU-Net v2 schemes.
        """
        if isinstance(value, NormalizationScheme):
            return value
        name = _NNUNET_CHANNEL_ALIASES.get(str(value).casefold(), str(value))
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f"normalisation scheme must be one of {[s.value for s in cls]}, got {value!r}") from None


@dataclass(frozen=True)
class IntensityProperties:
    """Foreground intensity statistics of one channel over the training set (HU for CT).

    Attributes:
        mean: mean foreground intensity.
        std: standard deviation of the foreground intensity.
        percentile_00_5: 0.5th percentile; CT normalisation clips below it.
        percentile_99_5: 99.5th percentile; CT normalisation clips above it.
    """

    mean: float
    std: float
    percentile_00_5: float
    percentile_99_5: float

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, float(getattr(self, f.name)))
        if self.percentile_00_5 > self.percentile_99_5:
            raise ValueError(
                f"percentile_00_5 must not exceed percentile_99_5, got {self.percentile_00_5} > {self.percentile_99_5}"
            )

    def to_json(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IntensityProperties:
        """Build from a mapping; extra keys (nnU-Net's ``median``, ``min``, ``max``) are ignored."""
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class ResamplingOrders:
    """How one kind of array is resampled, with nnU-Net's default resampling keyword arguments.

    Attributes:
        order: spline order in-plane (or on all axes when no axis is treated separately).
        order_z: order along the low-resolution axis when it is resampled separately (anisotropic rule).
        force_separate_z: ``None`` = decide from the anisotropy threshold (nnU-Net default);
            ``True`` / ``False`` force the separate-axis rule on or off.
    """

    order: int
    order_z: int = 0
    force_separate_z: bool | None = None

    def __post_init__(self) -> None:
        for name in ("order", "order_z"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or not 0 <= int(value) <= 5:
                raise ValueError(f"{name} must be an integer spline order in 0..5, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.force_separate_z not in (None, True, False):
            raise ValueError(f"force_separate_z must be None, True or False, got {self.force_separate_z!r}")

    def to_json(self) -> dict[str, Any]:
        return {"order": self.order, "order_z": self.order_z, "force_separate_z": self.force_separate_z}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResamplingOrders:
        return cls(int(data["order"]), int(data.get("order_z", 0)), data.get("force_separate_z"))


def _permutation(values: Sequence[int], what: str) -> tuple[int, int, int]:
    result = tuple(int(v) for v in values)
    if sorted(result) != [0, 1, 2]:
        raise ValueError(f"{what} must be a permutation of (0, 1, 2), got {tuple(values)!r}")
    return result  # type: ignore[return-value]


@dataclass(frozen=True)
class PreprocessingConfig:
    """Everything needed to pre-process an image the way a model was trained (nnU-Net v2 rules).

    Attributes:
        spacing: target spacing in mm, transposed order ``(X, Y, Z)``; 2 entries for a 2D
            configuration (the axis-0 spacing of the case is then kept).
        patch_size: network window in voxels, transposed order.
        transpose_forward: axes permutation applied to the ``(z, y, x)`` image first.
        transpose_backward: its inverse, applied to the label map last.
        normalization_schemes: one scheme per input channel.
        intensity_properties: one entry per channel (``None`` where the scheme needs none);
            ``CTNormalization`` requires it.
        use_mask_for_norm: per channel, z-score only inside the non-zero mask (nnU-Net's flag).
        anisotropy_threshold: spacing ratio above which the low-resolution axis is resampled
            separately (nnU-Net's ``ANISO_THRESHOLD`` = 3).
        data: resampling of the image (order 3, order_z 0).
        seg: resampling of label maps (order 1 one-hot, order_z 0); recorded for training code.
        probabilities: resampling of the network output back to the input grid (order 1, order_z 0).
    """

    spacing: tuple[float, ...]
    patch_size: tuple[int, ...]
    transpose_forward: tuple[int, int, int] = (0, 1, 2)
    transpose_backward: tuple[int, int, int] = (0, 1, 2)
    normalization_schemes: tuple[NormalizationScheme, ...] = (NormalizationScheme.CT,)
    intensity_properties: tuple[IntensityProperties | None, ...] = (None,)
    use_mask_for_norm: tuple[bool, ...] = (False,)
    anisotropy_threshold: float = 3.0
    data: ResamplingOrders = field(default_factory=lambda: ResamplingOrders(3, 0, None))
    seg: ResamplingOrders = field(default_factory=lambda: ResamplingOrders(1, 0, None))
    probabilities: ResamplingOrders = field(default_factory=lambda: ResamplingOrders(1, 0, None))

    def __post_init__(self) -> None:
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) not in (2, 3) or any(not s > 0 for s in spacing):
            raise ValueError(f"spacing must be 2 or 3 positive values in mm, got {self.spacing!r}")
        patch = tuple(int(p) for p in self.patch_size)
        if any(p <= 0 for p in patch):
            raise ValueError(f"patch_size must be positive integers, got {self.patch_size!r}")
        forward = _permutation(self.transpose_forward, "transpose_forward")
        backward = _permutation(self.transpose_backward, "transpose_backward")
        if tuple(forward[b] for b in backward) != (0, 1, 2):
            raise ValueError(f"transpose_backward {backward} is not the inverse of transpose_forward {forward}")
        schemes = tuple(NormalizationScheme.parse(s) for s in self.normalization_schemes)
        props = tuple(
            p if p is None or isinstance(p, IntensityProperties) else IntensityProperties.from_json(p)
            for p in self.intensity_properties
        )
        masks = tuple(bool(m) for m in self.use_mask_for_norm)
        if not schemes or len(props) != len(schemes) or len(masks) != len(schemes):
            raise ValueError(
                "normalization_schemes, intensity_properties and use_mask_for_norm need one entry per channel, "
                f"got {len(schemes)}, {len(props)} and {len(masks)}"
            )
        for channel, (scheme, prop) in enumerate(zip(schemes, props, strict=True)):
            if scheme is NormalizationScheme.CT and prop is None:
                raise ValueError(f"channel {channel} uses CTNormalization, which needs intensity_properties; got None")
        if not float(self.anisotropy_threshold) > 0:
            raise ValueError(f"anisotropy_threshold must be positive, got {self.anisotropy_threshold!r}")
        for name, value in (
            ("spacing", spacing),
            ("patch_size", patch),
            ("transpose_forward", forward),
            ("transpose_backward", backward),
            ("normalization_schemes", schemes),
            ("intensity_properties", props),
            ("use_mask_for_norm", masks),
            ("anisotropy_threshold", float(self.anisotropy_threshold)),
        ):
            object.__setattr__(self, name, value)

    @property
    def num_channels(self) -> int:
        return len(self.normalization_schemes)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON dictionary (``json.dumps`` ready) with ``schema_version``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "spacing": list(self.spacing),
            "patch_size": list(self.patch_size),
            "transpose_forward": list(self.transpose_forward),
            "transpose_backward": list(self.transpose_backward),
            "normalization_schemes": [s.value for s in self.normalization_schemes],
            "intensity_properties": [None if p is None else p.to_json() for p in self.intensity_properties],
            "use_mask_for_norm": list(self.use_mask_for_norm),
            "anisotropy_threshold": self.anisotropy_threshold,
            "resampling": {
                "data": self.data.to_json(),
                "seg": self.seg.to_json(),
                "probabilities": self.probabilities.to_json(),
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> PreprocessingConfig:
        """Inverse of ``to_json``; also accepts the JSON text.

        Raises:
            ValueError: wrong ``schema_version``, unknown keys or invalid values.
        """
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, Mapping):
            raise ValueError(f"pre-processing JSON must be an object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"pre-processing schema_version must be {SCHEMA_VERSION}, got {version!r}")
        known = {f.name for f in fields(cls)} - {"data", "seg", "probabilities"} | {"schema_version", "resampling"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown pre-processing keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        resampling = data.get("resampling", {})
        kwargs = {k: v for k, v in data.items() if k not in ("schema_version", "resampling")}
        for kind in ("data", "seg", "probabilities"):
            if kind in resampling:
                kwargs[kind] = ResamplingOrders.from_json(resampling[kind])
        return cls(**kwargs)

    @classmethod
    def from_nnunet(
        cls, plans: Mapping[str, Any], configuration: str, dataset_json: Mapping[str, Any]
    ) -> PreprocessingConfig:
        """Build from an nnU-Net v2 ``plans.json`` (dict), a configuration name and ``dataset.json``.

        Resolves ``inherits_from``; reads spacing, patch size, normalisation schemes, mask flags, the
        resampling keyword arguments and ``foreground_intensity_properties_per_channel``.

        Raises:
            ValueError: the configuration is missing, or the plan is inconsistent with the dataset.
        """
        conf = _resolve_configuration(plans, configuration)
        channels = dataset_json.get("channel_names", dataset_json.get("modality"))
        schemes = list(conf["normalization_schemes"])
        if channels is not None and len(channels) != len(schemes):
            raise ValueError(
                f"dataset.json declares {len(channels)} channels but configuration {configuration!r} "
                f"has {len(schemes)} normalization_schemes"
            )
        all_props = plans.get("foreground_intensity_properties_per_channel")
        if all_props is None:
            all_props = plans.get("foreground_intensity_properties_by_modality", {})
        props = [
            IntensityProperties.from_json(all_props[str(c)]) if str(c) in all_props else None
            for c in range(len(schemes))
        ]
        return cls(
            spacing=tuple(conf["spacing"]),
            patch_size=tuple(conf["patch_size"]),
            transpose_forward=tuple(plans.get("transpose_forward", (0, 1, 2))),  # type: ignore[arg-type]
            transpose_backward=tuple(plans.get("transpose_backward", (0, 1, 2))),  # type: ignore[arg-type]
            normalization_schemes=tuple(NormalizationScheme.parse(s) for s in schemes),
            intensity_properties=tuple(props),
            use_mask_for_norm=tuple(conf.get("use_mask_for_norm", [False] * len(schemes))),
            data=_nnunet_orders(conf, "resampling_fn_data", ResamplingOrders(3)),
            seg=_nnunet_orders(conf, "resampling_fn_seg", ResamplingOrders(1)),
            probabilities=_nnunet_orders(conf, "resampling_fn_probabilities", ResamplingOrders(1)),
        )


def _resolve_configuration(plans: Mapping[str, Any], name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    configurations = plans.get("configurations", {})
    if name not in configurations:
        raise ValueError(f"configuration must be one of {sorted(configurations)}, got {name!r}")
    if name in seen:
        raise ValueError(f"circular 'inherits_from' in plans: {' -> '.join((*seen, name))}")
    conf = dict(configurations[name])
    parent = conf.pop("inherits_from", None)
    if parent is None:
        return conf
    merged = _resolve_configuration(plans, parent, (*seen, name))
    merged.update(conf)
    return merged


def _nnunet_orders(conf: Mapping[str, Any], key: str, default: ResamplingOrders) -> ResamplingOrders:
    name = conf.get(key)
    if name is not None and name != _NNUNET_RESAMPLING_FN:
        logger.warning(
            "%s is %r; GASACore resamples with nnU-Net's default rule (%s) instead", key, name, _NNUNET_RESAMPLING_FN
        )
    kwargs = conf.get(f"{key}_kwargs") or {}
    return ResamplingOrders(
        int(kwargs.get("order", default.order)),
        int(kwargs.get("order_z", default.order_z)),
        kwargs.get("force_separate_z", default.force_separate_z),
    )
