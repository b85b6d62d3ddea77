"""Label sets and the one serializer of Slicer terminology entries."""

from __future__ import annotations

import pytest

from GASACore.labels import (
    AMOS_LABELS,
    BTCV_LABELS,
    KITS23_LABELS,
    LABEL_SETS,
    Code,
    Label,
    Terminology,
    labels_from_json,
    labels_to_json,
    terminology_entry,
)


def test_right_kidney_entry_is_slicers_serialisation() -> None:
    right_kidney = next(label for label in BTCV_LABELS if label.name == "right kidney")
    assert terminology_entry(right_kidney) == (
        "Segmentation category and type - 3D Slicer General Anatomy list"
        "~SCT^123037004^Anatomical Structure~SCT^64033007^Kidney~SCT^24028007^Right"
        "~Anatomic codes - DICOM master list~^^~^^"
    )


def test_entry_without_modifier_and_without_terminology() -> None:
    tumour = next(label for label in KITS23_LABELS if label.value == 2)
    assert terminology_entry(tumour).split("~")[1:4] == [
        "SCT^49755003^Morphologically Altered Structure",
        "SCT^108369006^Neoplasm",
        "^^",
    ]
    assert terminology_entry(Label(7, "unnamed thing", (1, 2, 3))) == ""


@pytest.mark.parametrize("bad", ["Kid~ney", "Kid^ney", "Kid|ney", "Kid\nney"])
def test_codes_with_slicer_separators_are_refused(bad: str) -> None:
    label = Label(1, "x", (1, 2, 3), Terminology(Code("SCT", "1", "Anatomical Structure"), Code("SCT", "2", bad)))
    with pytest.raises(ValueError, match="must not contain any of"):
        terminology_entry(label)


def test_every_label_set_round_trips_through_json() -> None:
    for labels in (BTCV_LABELS, AMOS_LABELS, KITS23_LABELS):
        assert labels_from_json(labels_to_json(labels)) == labels
        assert all(terminology_entry(label).count("~") == 6 for label in labels)
    assert set(LABEL_SETS) == {"btcv", "amos", "kits23"}


def test_bad_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        labels_from_json([{"value": 1, "name": "a"}, {"value": 1, "name": "b"}])
    with pytest.raises(ValueError, match="value >= 1 and an RGB colour"):
        labels_from_json([{"value": 0, "name": "background"}])
