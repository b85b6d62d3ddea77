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
    label_set_of_regions,
    labels_from_json,
    labels_to_json,
    painted_values,
    region_labels,
    terminology_entry,
)

#: nnU-Net's KiTS23 regions (Dataset220_KiTS2023's dataset.json, in its order) and class order.
KITS_REGIONS, KITS_ORDER = ([1, 2, 3], [2, 3], 2), (1, 3, 2)


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


def test_kits23_regions_name_kidney_tumour_and_cyst_with_snomed_codes() -> None:
    assert painted_values(KITS_REGIONS, KITS_ORDER) == ((1,), (3,), (2,))  # masses minus tumour = cyst
    labels = region_labels(KITS_REGIONS, KITS_ORDER, KITS23_LABELS)
    assert [(label.value, label.name) for label in labels] == [(1, "kidney"), (2, "kidney tumor"), (3, "kidney cyst")]
    assert [label.terminology.type.value for label in labels] == ["64033007", "108369006", "367643001"]
    assert label_set_of_regions(KITS_REGIONS) == "kits23"
    assert label_set_of_regions([[1, 2, 3], [2, 3], [3]]) is None  # another hierarchy (BraTS-like)
    assert label_set_of_regions([[2, 3], [1, 2, 3], [2]]) is None  # order matters: it fixes the channels


def test_a_painted_value_names_what_its_channel_leaves() -> None:
    # The same regions painted with other values: the labels keep their meaning, the values change.
    labels = region_labels(KITS_REGIONS, (5, 7, 6), KITS23_LABELS)
    assert [(label.value, label.name) for label in labels] == [(5, "kidney"), (6, "kidney tumor"), (7, "kidney cyst")]
    # Painting tumour before masses: masses paint over every tumour voxel, so the tumour label is never left.
    with pytest.raises(ValueError, match=r"region channel 1 paints label 2, which stands for label values \[\]"):
        region_labels(([1, 2, 3], 2, [2, 3]), (1, 2, 3), KITS23_LABELS)
    # Masses painted last stand for tumour and cyst together: no single label of the set.
    with pytest.raises(ValueError, match=r"region channel 1 paints label 2, which stands for label values \[2, 3\]"):
        region_labels(([1, 2, 3], [2, 3]), (1, 2), KITS23_LABELS)
    with pytest.raises(ValueError, match="one label per region"):
        painted_values(KITS_REGIONS, (1, 2))
    with pytest.raises(ValueError, match="two region channels paint label 1"):
        region_labels(KITS_REGIONS, (1, 1, 2), KITS23_LABELS)
