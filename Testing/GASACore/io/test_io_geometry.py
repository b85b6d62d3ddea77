"""Geometry: validation, SimpleITK conversion, JSON and tolerance comparison."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore.io import Geometry

OBLIQUE = (math.cos(0.3), -math.sin(0.3), 0.0, math.sin(0.3), math.cos(0.3), 0.0, 0.0, 0.0, 1.0)


def _geometry(**changes: object) -> Geometry:
    fields: dict[str, object] = {
        "size": (7, 6, 5),
        "spacing": (0.7, 0.8, 5.0),
        "origin": (-10.5, 20.25, -300.0),
        "direction": OBLIQUE,
    }
    fields.update(changes)
    return Geometry(**fields)  # type: ignore[arg-type]


def test_from_sitk_reads_what_simpleitk_reports() -> None:
    image = sitk.Image([7, 6, 5], sitk.sitkInt16)
    image.SetSpacing((0.7, 0.8, 5.0))
    image.SetOrigin((-10.5, 20.25, -300.0))
    image.SetDirection(OBLIQUE)
    geometry = Geometry.from_sitk(image)
    assert geometry.size == (7, 6, 5)
    assert geometry.spacing == pytest.approx((0.7, 0.8, 5.0))
    assert geometry.origin == pytest.approx((-10.5, 20.25, -300.0))
    assert geometry.direction == pytest.approx(OBLIQUE)
    assert geometry.shape_zyx == (5, 6, 7) == sitk.GetArrayFromImage(image).shape
    assert geometry.spacing_zyx == pytest.approx((5.0, 0.8, 0.7))


def test_from_sitk_refuses_2d() -> None:
    with pytest.raises(ValueError, match=r"3D image, got a 2D image of size \(4, 5\)"):
        Geometry.from_sitk(sitk.Image([4, 5], sitk.sitkUInt8))


def test_apply_to_sets_spacing_origin_direction() -> None:
    geometry = _geometry()
    image = sitk.GetImageFromArray(np.zeros(geometry.shape_zyx, np.uint8))
    geometry.apply_to(image)
    assert Geometry.from_sitk(image) == geometry


def test_apply_to_refuses_other_size() -> None:
    image = sitk.GetImageFromArray(np.zeros((5, 6, 8), np.uint8))
    with pytest.raises(ValueError, match=r"equal the geometry's \(7, 6, 5\), got \(8, 6, 5\)"):
        _geometry().apply_to(image)


def test_json_round_trip_through_text() -> None:
    geometry = _geometry()
    restored = Geometry.from_json(json.loads(json.dumps(geometry.to_json())))
    assert restored == geometry
    assert isinstance(restored.size[0], int)


def test_from_json_names_missing_keys() -> None:
    with pytest.raises(ValueError, match=r"missing \['direction'\]"):
        Geometry.from_json({"size": [2, 2, 2], "spacing": [1, 1, 1], "origin": [0, 0, 0]})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": (7, 6)}, "size must be 3 positive integers"),
        ({"size": (7, 0, 5)}, "size must be 3 positive integers"),
        ({"size": (7, 6.5, 5)}, "size must be 3 positive integers"),
        ({"spacing": (1.0, 0.0, 1.0)}, "spacing must be 3 positive values"),
        ({"spacing": (1.0, float("nan"), 1.0)}, "spacing must be 3 finite numbers"),
        ({"origin": (0.0, 0.0)}, "origin must be 3 finite numbers"),
        ({"origin": (0.0, float("inf"), 0.0)}, "origin must be 3 finite numbers"),
        ({"direction": (1.0, 0.0, 0.0)}, "direction must be 9 finite numbers"),
        ({"direction": (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)}, "invertible 3x3 matrix"),
    ],
)
def test_invalid_fields_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _geometry(**changes)


def test_is_close_uses_the_tolerance() -> None:
    geometry = _geometry()
    shifted = _geometry(origin=(-10.5 + 5e-5, 20.25, -300.0))
    assert geometry.is_close(shifted)
    assert not geometry.is_close(_geometry(origin=(-10.5 + 5e-3, 20.25, -300.0)))
    assert not geometry.is_close(shifted, atol=1e-5)
    assert not geometry.is_close(_geometry(size=(7, 6, 6)))
    assert not geometry.is_close(_geometry(spacing=(0.7, 0.8, 5.01)))
    assert not geometry.is_close(_geometry(direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)))


@pytest.mark.parametrize(
    ("direction", "code"),
    [
        ((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), "LPS"),
        ((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0), "RAS"),
        ((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), "RPS"),
    ],
)
def test_orientation_code(direction: tuple[float, ...], code: str) -> None:
    assert _geometry(direction=direction).orientation == code
