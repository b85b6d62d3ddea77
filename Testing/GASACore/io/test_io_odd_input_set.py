"""The valid-but-odd set (odd_inputs.py): each input is read in exactly its geometry, with exactly its voxels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from odd_inputs import ODD_INPUTS

from GASACore.io import read_image


@pytest.mark.parametrize("name", ODD_INPUTS)
def test_odd_input_is_read_in_its_geometry(tmp_path: Path, dicom_slices: list[str], name: str) -> None:
    path, geometry, values = ODD_INPUTS[name](tmp_path, dicom_slices)
    image = read_image(path)
    assert image.geometry.size == geometry.size
    # float32 headers (NIfTI, DICOM strings) hold ~7 digits: 1e-4 mm at 300 mm from the origin
    assert image.geometry.is_close(geometry, atol=1e-4), (image.geometry, geometry)
    assert image.array.dtype == np.float32
    np.testing.assert_array_equal(image.array, np.asarray(values).astype(np.float32))
