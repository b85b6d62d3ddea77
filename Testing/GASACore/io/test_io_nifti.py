"""NIfTI through nibabel: the same geometry as SimpleITK on every orientation, nnU-Net's affine choice, and label
maps written back (by SimpleITK) in exactly the input geometry."""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from bad_inputs_nifti import ct_values, nifti_bytes, write
from nnunetv2.imageio.nibabel_reader_writer import NibabelIO
from test_io_roundtrip import GEOMETRIES

from GASACore.io import Geometry, read_image, write_label_map


def _signed_permutations() -> dict[str, tuple[float, ...]]:
    """All 48 axis-aligned directions (24 rotations, 24 reflections), named by ITK's orientation code."""
    found = {}
    for permutation in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            matrix = np.zeros((3, 3))
            for column, (row, sign) in enumerate(zip(permutation, signs, strict=True)):
                matrix[row, column] = sign
            code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(matrix.reshape(-1).tolist())
            found[code] = tuple(matrix.reshape(-1))
    return found


_C, _S = math.cos(math.radians(33)), math.sin(math.radians(33))
ORIENTATIONS = {
    **{
        f"axis-aligned {code}": ((7, 6, 5), (0.8, 0.9, 2.5), (120.5, -80.25, -300.0), d)
        for code, d in _signed_permutations().items()
    },
    **{f"roundtrip {name}": spec for name, spec in GEOMETRIES.items()},
    "oblique 33 degrees about two axes": (
        (7, 6, 5),
        (0.7, 0.75, 3.0),
        (-10.0, 250.0, 1000.0),
        (_C, -_S * _C, _S * _S, _S, _C * _C, -_C * _S, 0.0, _S, _C),
    ),
}


def _sitk_image(spec: tuple, pixel_type: int = sitk.sitkInt16) -> sitk.Image:
    size, spacing, origin, direction = spec
    values = ct_values(tuple(size[::-1]), "float64")
    image = sitk.Cast(sitk.GetImageFromArray(values), pixel_type)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection([float(v) for v in direction])
    return image


def test_there_are_48_axis_aligned_orientations() -> None:
    assert len(_signed_permutations()) == 48


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("name", ORIENTATIONS)
def test_nibabel_and_simpleitk_read_the_same_geometry(tmp_path: Path, name: str, suffix: str) -> None:
    path = tmp_path / f"ct{suffix}"
    sitk.WriteImage(_sitk_image(ORIENTATIONS[name]), str(path))
    reference = sitk.ReadImage(str(path))
    image = read_image(path)
    assert image.geometry.is_close(Geometry.from_sitk(reference), atol=1e-5), (image.geometry, reference)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(reference).astype(np.float32))


@pytest.mark.parametrize(
    "name", ["axis-aligned RAS", "axis-aligned LPS", "axis-aligned PIL", "roundtrip oblique-20deg"]
)
def test_a_label_map_for_a_nifti_input_has_its_exact_geometry(tmp_path: Path, name: str) -> None:
    source = tmp_path / "ct.nii.gz"
    sitk.WriteImage(_sitk_image(ORIENTATIONS[name]), str(source))
    image = read_image(source)
    labels = (image.array > 0).astype(np.uint8) + 2 * (image.array < -500)
    for suffix in (".nii.gz", ".nrrd", ".seg.nrrd"):
        written = write_label_map(labels, image.geometry, tmp_path / f"labels{suffix}")
        back = sitk.ReadImage(str(written))
        assert Geometry.from_sitk(back).is_close(image.geometry, atol=1e-5), suffix
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), labels)
    # the NIfTI label map read back through nibabel: the input's own affine, voxel for voxel
    np.testing.assert_allclose(nib.load(tmp_path / "labels.nii.gz").affine, nib.load(source).affine, atol=1e-4)
    assert read_image(tmp_path / "labels.nii.gz").geometry.is_close(image.geometry, atol=1e-5)


def test_real_example_ct_matches_simpleitk_and_nnunet(example_ct: Path) -> None:
    image = read_image(example_ct)
    reference = sitk.ReadImage(str(example_ct))
    assert image.geometry.is_close(Geometry.from_sitk(reference), atol=1e-5)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(reference).astype(np.float32))
    data, properties = NibabelIO().read_images([str(example_ct)])
    np.testing.assert_array_equal(
        image.array, data[0].transpose(0, 1, 2)
    )  # NibabelIO: (x, y, z) transposed to (z, y, x)
    assert image.geometry.spacing_zyx == pytest.approx(properties["spacing"])


def _nnunet_affine_lps(path: Path) -> np.ndarray:
    _, properties = NibabelIO().read_images([str(path)])
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ properties["nibabel_stuff"]["original_affine"]


def _geometry_affine(geometry: Geometry) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.reshape(geometry.direction, (3, 3)) * np.asarray(geometry.spacing)
    affine[:3, 3] = geometry.origin
    return affine


@pytest.mark.parametrize(
    ("sform", "qform"),
    [(True, True), (True, False), (False, True), (False, False)],
    ids=["sform and qform", "sform only", "qform only", "neither"],
)
def test_the_affine_is_chosen_as_nnunet_chooses_it(
    tmp_path: Path, sform: bool, qform: bool, caplog: pytest.LogCaptureFixture
) -> None:
    affine = np.array([[0.0, 0.0, 2.5, -40.0], [-0.8, 0.0, 0.0, 60.0], [0.0, 0.9, 0.0, -12.5], [0, 0, 0, 1]])
    content = nifti_bytes(ct_values((5, 6, 7)), affine, sform=sform, qform=qform)
    if sform and qform:  # a qform that disagrees: nibabel (and nnU-Net) use the sform
        header = nib.Nifti1Header(binaryblock=content[:348], check=False)
        header.set_qform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
        content = header.binaryblock + content[348:]
    path = write(tmp_path / "ct.nii.gz", content)
    with caplog.at_level(logging.WARNING, logger="GASACore.io"):
        geometry = read_image(path).geometry
    np.testing.assert_allclose(_geometry_affine(geometry), _nnunet_affine_lps(path), atol=1e-5)
    assert ("neither an sform nor a qform" in caplog.text) is (not sform and not qform)


@pytest.mark.parametrize("name", ["labels.nii.gz", "labels.nii"])
def test_a_label_map_for_a_file_without_sform_and_qform_is_placed_where_each_reader_places_it(
    tmp_path: Path, name: str
) -> None:
    """Both codes 0: nibabel centres the grid (x flipped), ITK puts it at 0 on LPS axes; the output does the same."""
    image_path = write(tmp_path / "ct.nii.gz", nifti_bytes(ct_values((5, 6, 7)), np.diag([0.8, 0.9, 2.5, 1.0]),
                                                           sform=False, qform=False))  # fmt: skip
    image = read_image(image_path)
    assert image.unplaced
    labels = (np.arange(210).reshape(5, 6, 7) % 3).astype(np.uint8)
    output = write_label_map(labels, image.geometry, tmp_path / name, unplaced=image.unplaced)
    written = nib.load(output)
    assert (int(written.header["sform_code"]), int(written.header["qform_code"])) == (0, 0)
    np.testing.assert_allclose(written.affine, nib.load(image_path).affine, atol=1e-6)
    by_itk = [sitk.ReadImage(str(path)) for path in (image_path, output)]
    assert Geometry.from_sitk(by_itk[1]).is_close(Geometry.from_sitk(by_itk[0]), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(by_itk[1]), labels)
