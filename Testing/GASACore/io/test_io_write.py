"""write_label_map: refused inputs, overwrite rules and atomic writes (nothing left behind on failure)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore.errors import InputError
from GASACore.io import Geometry, write_label_map
from GASACore.labels import Label

GEOMETRY = Geometry((5, 4, 3), (0.7, 0.7, 5.0), (10.0, -20.0, 30.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
LABELS = np.arange(60, dtype=np.uint8).reshape(3, 4, 5) % 3


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (LABELS.transpose(2, 1, 0), r"shape \(z, y, x\) = \(3, 4, 5\) to match geometry size \(x, y, z\) \(5, 4, 3\)"),
        (LABELS[0], r"shape \(z, y, x\) = \(3, 4, 5\) .* got shape \(4, 5\)"),
        (LABELS.astype(np.float32), r"integer \(or bool\) numpy array, got float32"),
        (LABELS.astype(np.int16) - 1, r"label values must be 0-65535, got values from -1 to 1"),
        (LABELS.astype(np.int32) * 40000, r"label values must be 0-65535, got values from 0 to 80000"),
    ],
    ids=["transposed", "2D", "float", "negative", "too large"],
)
def test_invalid_labels_raise_value_error_and_write_nothing(tmp_path: Path, labels: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_label_map(labels, GEOMETRY, tmp_path / "out.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_invalid_label_info_writes_nothing(tmp_path: Path) -> None:
    duplicate = [Label(1, "liver", (200, 100, 90)), Label(1, "spleen", (150, 100, 160))]
    with pytest.raises(ValueError, match=r"label values must be unique, got \[1, 1\]"):
        write_label_map(LABELS, GEOMETRY, tmp_path / "out.seg.nrrd", label_info=duplicate)
    with pytest.raises(ValueError, match=r"single line, got 'liver\\nleft'"):
        write_label_map(LABELS, GEOMETRY, tmp_path / "out.seg.nrrd", label_info=[Label(1, "liver\nleft", (1, 2, 3))])
    assert list(tmp_path.iterdir()) == []


def test_unknown_suffix_lists_the_supported_ones(tmp_path: Path) -> None:
    expected = r"ending in one of \.seg\.nrrd, \.nii\.gz, \.nii, \.nrrd, \.mha, got .*out\.png"
    with pytest.raises(InputError, match=expected):
        write_label_map(LABELS, GEOMETRY, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"expected an existing output folder, got .*no_such_folder"):
        write_label_map(LABELS, GEOMETRY, tmp_path / "no_such_folder" / "out.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_not_an_output_file(tmp_path: Path) -> None:
    (tmp_path / "out.nii.gz").mkdir()
    with pytest.raises(InputError, match=r"expected an output file path, got the existing folder"):
        write_label_map(LABELS, GEOMETRY, tmp_path / "out.nii.gz", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.nii.gz"]


def test_existing_output_is_kept_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "out.nii.gz").write_bytes(b"the user's earlier result")
    (tmp_path / "other.txt").write_text("another file of the user")
    before = _listing(tmp_path)
    with pytest.raises(InputError, match=r"out\.nii\.gz already exists \(FileExistsError\); pass overwrite=True"):
        write_label_map(LABELS, GEOMETRY, tmp_path / "out.nii.gz")
    assert _listing(tmp_path) == before


def test_overwrite_replaces_only_the_output(tmp_path: Path) -> None:
    (tmp_path / "out.nrrd").write_bytes(b"the user's earlier result")
    (tmp_path / "other.txt").write_text("another file of the user")
    path = write_label_map(LABELS, GEOMETRY, tmp_path / "out.nrrd", overwrite=True)
    assert path == tmp_path / "out.nrrd"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), LABELS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt", "out.nrrd"]
    assert (tmp_path / "other.txt").read_text() == "another file of the user"


def test_bool_labels_and_string_paths(tmp_path: Path) -> None:
    path = write_label_map(LABELS > 0, GEOMETRY, str(tmp_path / "mask.mha"))
    back = sitk.ReadImage(str(path))
    assert back.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), (LABELS > 0).astype(np.uint8))


_FAILING_WRITE = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    from GASACore.io import Geometry, write_label_map

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    labels = np.random.default_rng(0).integers(0, 200, (40, 40, 40), dtype=np.uint8)
    geometry = Geometry((40, 40, 40), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    try:
        write_label_map(labels, geometry, sys.argv[1], overwrite=True)
    except Exception as err:
        print(type(err).__name__, err)
    else:
        print("written")
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("suffix", [".nii.gz", ".seg.nrrd"])  # ITK: silent short write; error raised
def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, suffix: str) -> None:
    (tmp_path / "other.txt").write_text("another file of the user")
    (tmp_path / f"out{suffix}").write_bytes(b"the user's earlier result")
    before = _listing(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", _FAILING_WRITE, str(tmp_path / f"out{suffix}")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        check=True,
    )
    reason = "file too large for the file size limit (ulimit -f) of 4.0 KB (needs ~66.5 KB)"  # an OSError
    assert result.stdout.strip() == f"OutputError cannot write {tmp_path / f'out{suffix}'}: {reason}", result.stderr
    assert _listing(tmp_path) == before  # no temporary file, earlier output untouched


@pytest.mark.parametrize("name", ["SEG.NII.GZ", "seg.Nii", "SEG.MHA", "Seg.Nrrd", "SEG.SEG.NRRD"])
def test_an_upper_case_suffix_is_written_in_its_format(tmp_path: Path, name: str) -> None:
    """ITK picks its writer by a lower-case suffix: OUT.NII.GZ failed after the model ran, OUT.MHA became .mhd +
    .zraw left behind. The file is written under the lower-case name, checked, then renamed."""
    path = write_label_map(LABELS, GEOMETRY, tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    image = sitk.ReadImage(str(path.rename(tmp_path / name.lower())))  # ITK reads by lower-case suffix too
    assert Geometry.from_sitk(image).is_close(GEOMETRY, atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), LABELS)
