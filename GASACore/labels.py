"""Label sets with names, colours and SNOMED CT terminology (BTCV, AMOS22, KiTS23), and region-based outputs.

Each label carries the DICOM-style triplets 3D Slicer's terminology uses: a category (for example
"Anatomical Structure"), a type (the organ) and an optional type modifier (right / left).
Colours are RGB 0-255, close to Slicer's GenericAnatomyColors. :func:`terminology_entry` writes a
label's terminology the way 3D Slicer serialises it (``.seg.nrrd`` headers, segment tags).

Region-based nnU-Net models (KiTS23's hierarchical classes) output one sigmoid channel per region; each channel
paints one label value, and :func:`region_labels` names the label each channel leaves from what it stands for
(:func:`painted_values`). Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ANATOMIC_CONTEXT",
    "LABEL_SETS",
    "LABEL_SET_REGIONS",
    "TERMINOLOGY_CONTEXT",
    "Code",
    "Label",
    "Terminology",
    "label_set_of_regions",
    "labels_from_json",
    "labels_to_json",
    "painted_values",
    "region_labels",
    "terminology_entry",
]

#: Slicer's terminology context that holds the categories / types of our label sets ("Anatomical Structure" / "Spleen").
TERMINOLOGY_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
#: Slicer's anatomic context (region) list; our segments name no region: the type itself is the organ.
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

_FORBIDDEN_IN_CODES = ("~", "^", "|", "\n", "\r")


@dataclass(frozen=True)
class Code:
    """One coded concept: scheme designator (``SCT`` = SNOMED CT), code value and meaning."""

    scheme: str
    value: str
    meaning: str

    def to_json(self) -> dict[str, str]:
        return {"scheme": self.scheme, "value": self.value, "meaning": self.meaning}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Code:
        return cls(scheme=str(data["scheme"]), value=str(data["value"]), meaning=str(data["meaning"]))

    def slicer_field(self) -> str:
        """``scheme^value^meaning``, e.g. ``"SCT^78961009^Spleen"``.

        Raises:
            ValueError: a part holds one of Slicer's separators (``~ ^ |`` or a line break).
        """
        parts = (self.scheme, self.value, self.meaning)
        if any(char in part for part in parts for char in _FORBIDDEN_IN_CODES):
            raise ValueError(f"terminology codes must not contain any of {_FORBIDDEN_IN_CODES}, got {self!r}")
        return "^".join(parts)


@dataclass(frozen=True)
class Terminology:
    """Category, type and optional type modifier of a segment."""

    category: Code
    type: Code
    modifier: Code | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category.to_json(),
            "type": self.type.to_json(),
            "modifier": self.modifier.to_json() if self.modifier else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Terminology:
        modifier = data.get("modifier")
        return cls(
            category=Code.from_json(data["category"]),
            type=Code.from_json(data["type"]),
            modifier=Code.from_json(modifier) if modifier else None,
        )

    def slicer_entry(self) -> str:
        """Slicer's serialised terminology entry (``vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry``):
        ``context~category~type~typeModifier~anatomicContext~region~regionModifier``, each code as
        ``scheme^value^meaning`` and ``^^`` for none.

        Example: the right kidney gives ``"Segmentation category and type - 3D Slicer General Anatomy list~
        SCT^123037004^Anatomical Structure~SCT^64033007^Kidney~SCT^24028007^Right~Anatomic codes - DICOM
        master list~^^~^^"`` (one line).

        Raises:
            ValueError: a code holds one of Slicer's separators.
        """
        fields = (
            TERMINOLOGY_CONTEXT,
            self.category.slicer_field(),
            self.type.slicer_field(),
            self.modifier.slicer_field() if self.modifier else "^^",
            ANATOMIC_CONTEXT,
            "^^",
            "^^",
        )
        return "~".join(fields)


@dataclass(frozen=True)
class Label:
    """One output class of a model: label value, display name, colour and terminology."""

    value: int
    name: str
    color: tuple[int, int, int]
    terminology: Terminology | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "name": self.name,
            "color": list(self.color),
            "terminology": self.terminology.to_json() if self.terminology else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Label:
        """A label from its JSON object; refuses what no label map, ``.seg.nrrd`` or table could hold.

        Raises:
            ValueError: a value below 1, a colour that is not 3 whole numbers 0-255 (NaN included), or a name
                that is empty or holds control characters (a line break would break a ``.seg.nrrd`` header).
        """
        value = int(data["value"])
        raw_color = data.get("color", (128, 128, 128))
        numbers = list(raw_color) if isinstance(raw_color, (list, tuple)) else []
        whole = all(isinstance(c, (int, float)) and math.isfinite(c) and c == int(c) for c in numbers)
        color = tuple(int(c) for c in numbers) if whole else ()
        if value < 1 or len(color) != 3 or any(not 0 <= c <= 255 for c in color):
            raise ValueError(
                f"a label needs a value >= 1 and an RGB colour of 3 whole numbers 0-255, got {dict(data)!r}"
            )
        name = str(data["name"])
        if not name.strip() or any(ord(char) < 32 or ord(char) == 127 for char in name):
            raise ValueError(
                f"a label needs a non-empty name without line breaks or other control characters, got {name!r} "
                f"(value {value})"
            )
        term = data.get("terminology")
        return cls(
            value=value,
            name=name,
            color=color,  # type: ignore[arg-type]
            terminology=Terminology.from_json(term) if term else None,
        )


def terminology_entry(label: Label) -> str:
    """Slicer's terminology entry string of ``label`` (:meth:`Terminology.slicer_entry`); ``""`` without one."""
    return label.terminology.slicer_entry() if label.terminology else ""


def labels_to_json(labels: Sequence[Label]) -> list[dict[str, Any]]:
    return [label.to_json() for label in labels]


def labels_from_json(data: Sequence[Mapping[str, Any]]) -> tuple[Label, ...]:
    """Parse labels and check that values are unique."""
    labels = tuple(Label.from_json(item) for item in data)
    values = [label.value for label in labels]
    if len(set(values)) != len(values):
        raise ValueError(f"label values must be unique, got {values}")
    return labels


_ANATOMY = Code("SCT", "123037004", "Anatomical Structure")
_MORPHOLOGY = Code("SCT", "49755003", "Morphologically Altered Structure")
_RIGHT = Code("SCT", "24028007", "Right")
_LEFT = Code("SCT", "7771000", "Left")


def _organ(
    value: int, name: str, color: tuple[int, int, int], code: str, meaning: str, side: Code | None = None
) -> Label:
    return Label(value, name, color, Terminology(_ANATOMY, Code("SCT", code, meaning), side))


_SPLEEN = ("spleen", (157, 108, 162), "78961009", "Spleen")
_GALLBLADDER = ("gallbladder", (139, 150, 98), "28231008", "Gallbladder")
_ESOPHAGUS = ("esophagus", (211, 171, 143), "32849002", "Esophagus")
_LIVER = ("liver", (221, 130, 101), "10200004", "Liver")
_STOMACH = ("stomach", (216, 132, 105), "69695003", "Stomach")
_AORTA = ("aorta", (224, 97, 76), "15825003", "Aorta")
_IVC = ("inferior vena cava", (0, 151, 206), "64131007", "Inferior vena cava")
_PANCREAS = ("pancreas", (249, 180, 111), "15776009", "Pancreas")


def _kidneys(first: int) -> list[Label]:
    return [
        _organ(first, "right kidney", (185, 102, 83), "64033007", "Kidney", _RIGHT),
        _organ(first + 1, "left kidney", (185, 102, 83), "64033007", "Kidney", _LEFT),
    ]


def _adrenals(first: int) -> list[Label]:
    return [
        _organ(first, "right adrenal gland", (244, 214, 49), "23451007", "Adrenal gland", _RIGHT),
        _organ(first + 1, "left adrenal gland", (244, 214, 49), "23451007", "Adrenal gland", _LEFT),
    ]


BTCV_LABELS: tuple[Label, ...] = (
    _organ(1, *_SPLEEN),
    *_kidneys(2),
    _organ(4, *_GALLBLADDER),
    _organ(5, *_ESOPHAGUS),
    _organ(6, *_LIVER),
    _organ(7, *_STOMACH),
    _organ(8, *_AORTA),
    _organ(9, *_IVC),
    _organ(10, "portal and splenic veins", (0, 112, 165), "32764006", "Portal vein"),
    _organ(11, *_PANCREAS),
    *_adrenals(12),
)

AMOS_LABELS: tuple[Label, ...] = (
    _organ(1, *_SPLEEN),
    *_kidneys(2),
    _organ(4, *_GALLBLADDER),
    _organ(5, *_ESOPHAGUS),
    _organ(6, *_LIVER),
    _organ(7, *_STOMACH),
    _organ(8, *_AORTA),
    _organ(9, "postcava", (0, 151, 206), "64131007", "Inferior vena cava"),
    _organ(10, *_PANCREAS),
    *_adrenals(11),
    _organ(13, "duodenum", (255, 253, 229), "38848004", "Duodenum"),
    _organ(14, "urinary bladder", (222, 154, 132), "89837001", "Urinary bladder"),
    _organ(15, "prostate or uterus", (230, 158, 140), "41216001", "Prostate"),
)

KITS23_LABELS: tuple[Label, ...] = (
    _organ(1, "kidney", (185, 102, 83), "64033007", "Kidney"),
    Label(2, "kidney tumor", (253, 135, 192), Terminology(_MORPHOLOGY, Code("SCT", "108369006", "Neoplasm"))),
    Label(3, "kidney cyst", (205, 205, 100), Terminology(_MORPHOLOGY, Code("SCT", "367643001", "Cyst"))),
)

#: Known label sets by name.
LABEL_SETS: Mapping[str, tuple[Label, ...]] = {"btcv": BTCV_LABELS, "amos": AMOS_LABELS, "kits23": KITS23_LABELS}

#: Label sets that nnU-Net trains region-based: each region as the label values it unites, in dataset.json order.
#: KiTS23: the challenge's hierarchical classes kidney and masses {1, 2, 3}, masses {2, 3} and tumour {2}
#: (nnU-Net's Dataset220_KiTS2023 names them ``kidney``, ``masses`` and ``tumor``).
LABEL_SET_REGIONS: Mapping[str, tuple[tuple[int, ...], ...]] = {"kits23": ((1, 2, 3), (2, 3), (2,))}

Regions = Sequence[int | Sequence[int]]


def _region_sets(regions: Regions) -> list[frozenset[int]]:
    sets = [frozenset((int(r),) if isinstance(r, int) else (int(v) for v in r)) for r in regions]
    if any(not values or min(values) < 1 for values in sets):
        raise ValueError(f"regions must be non-empty sets of label values >= 1, got {list(regions)!r}")
    return sets


def painted_values(regions: Regions, regions_class_order: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """The label values that each region channel's painted label stands for in the final label map.

    nnU-Net turns region outputs into a label map channel by channel: channel ``c`` paints
    ``regions_class_order[c]`` where its region is predicted, over whatever earlier channels painted. The label
    channel ``c`` leaves therefore stands for its region minus the regions of every later channel.

    Examples (KiTS23 as nnU-Net's Dataset220 conversion; kidney 1, tumour 2, cyst 3):
        >>> painted_values([(1, 2, 3), (2, 3), 2], [1, 3, 2])
        ((1,), (3,), (2,))
        >>> painted_values([(1, 2, 3), (2, 3), (3,)], [1, 2, 3])  # BraTS-style nesting
        ((1,), (2,), (3,))

    Raises:
        ValueError: a different number of regions and class-order entries, or an empty region.
    """
    sets = _region_sets(regions)
    if len(sets) != len(regions_class_order):
        raise ValueError(
            f"regions_class_order must have one label per region ({len(sets)}), got {list(regions_class_order)!r}"
        )
    painted = []
    for channel, region in enumerate(sets):
        later = frozenset().union(*sets[channel + 1 :])
        painted.append(tuple(sorted(region - later)))
    return tuple(painted)


def region_labels(regions: Regions, regions_class_order: Sequence[int], labels: Sequence[Label]) -> tuple[Label, ...]:
    """The output labels of a region-based model, named from a label set.

    Each channel's painted value (``regions_class_order``) becomes a label with the name, colour and terminology
    of the one label value it stands for (:func:`painted_values`); sorted by value.

    Example: KiTS23's regions kidney {1, 2, 3}, masses {2, 3}, tumor {2} with class order (1, 3, 2) give
    kidney = 1, kidney tumor = 2 and kidney cyst = 3 (the "masses" channel leaves the masses that are no tumour).

    Raises:
        ValueError: a painted label that stands for no value or for several, a value ``labels`` does not define,
            or two channels painting the same value.
    """
    by_value = {label.value: label for label in labels}
    result: dict[int, Label] = {}
    stands_for = painted_values(regions, regions_class_order)
    for channel, (values, painted) in enumerate(zip(stands_for, regions_class_order, strict=True)):
        if len(values) != 1 or values[0] not in by_value:
            raise ValueError(
                f"region channel {channel} paints label {painted}, which stands for label values {list(values)}: "
                f"expected exactly one value of the label set (values {sorted(by_value)})"
            )
        if int(painted) in result:
            raise ValueError(f"two region channels paint label {painted}; regions_class_order must not repeat labels")
        source = by_value[values[0]]
        result[int(painted)] = Label(int(painted), source.name, source.color, source.terminology)
    return tuple(result[value] for value in sorted(result))


def label_set_of_regions(regions: Regions) -> str | None:
    """The name of the label set trained with exactly these regions (same value sets, same order), else ``None``.

    Example: ``label_set_of_regions([[1, 2, 3], [2, 3], 2])`` is ``"kits23"``.
    """
    sets = _region_sets(regions)
    for name, known in LABEL_SET_REGIONS.items():
        if sets == _region_sets(known):
            return name
    return None
