"""atomic_output: outputs appear complete or not at all, with normal permissions, never clobbering by accident."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from small_mounts import fill, run_with_file_size_limit, tmpfs

from GASACore.errors import OutputError
from GASACore.io import atomic_output, give_default_permissions, stale_temporaries
from GASACore.io.formats import LABEL_MAP_SUFFIXES
from GASACore.io.geometry import Geometry
from GASACore.io.writer import write_label_map


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_file_is_renamed_into_place_with_default_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "volumes.csv"
    with atomic_output(target, overwrite=False) as temporary:
        assert temporary.parent == target.parent and temporary.name.endswith("volumes.csv")
        assert temporary.name.startswith(".") and not temporary.exists()
        temporary.write_text("label,volume_ml\n")
        assert not target.exists(), "nothing at the target before the body finishes"
    assert target.read_text() == "label,volume_ml\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in target.parent.iterdir()] == ["volumes.csv"]


def test_failure_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "labels.nii.gz"
    target.write_text("the user's earlier result")
    with pytest.raises(RuntimeError, match="disk full"), atomic_output(target, overwrite=True) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "the user's earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.nii.gz"]


def test_existing_output_is_refused_before_the_body_runs(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_text("keep me")
    ran = []
    with pytest.raises(FileExistsError, match=r"out\.png already exists"), atomic_output(target, overwrite=False):
        ran.append(True)
    assert ran == [] and target.read_text() == "keep me"


def test_a_file_appearing_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(FileExistsError), atomic_output(target, overwrite=False) as temporary:
        temporary.write_text("ours")
        target.write_text("another process was faster")
    assert target.read_text() == "another process was faster"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_overwrite_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_output(target, overwrite=True) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new"


def test_writing_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_output(tmp_path / "x", overwrite=False):
        pass
    assert list(tmp_path.iterdir()) == []


def test_folder_is_built_then_renamed(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    with atomic_output(target, overwrite=False, is_dir=True) as temporary:
        assert temporary.is_dir() and not any(temporary.iterdir())
        (temporary / "model.json").write_text("{}")
        (temporary / "imagesTr").mkdir()
        assert not target.exists()
    assert sorted(p.name for p in target.iterdir()) == ["imagesTr", "model.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask(), "not mkdtemp's private 0700"
    assert stat.S_IMODE((target / "imagesTr").stat().st_mode) == 0o777 & ~_umask()


def test_folder_overwrite_replaces_and_failure_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "Dataset001_X"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(ValueError, match="bad case"), atomic_output(target, overwrite=True, is_dir=True) as temporary:
        (temporary / "new.txt").write_text("new")
        raise ValueError("bad case")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with atomic_output(target, overwrite=True, is_dir=True) as temporary:
        (temporary / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["Dataset001_X"], "the old folder and the temporary are gone"


def test_a_folder_appearing_meanwhile_wins(tmp_path: Path) -> None:
    target = tmp_path / "cache-entry"
    with pytest.raises(FileExistsError), atomic_output(target, overwrite=False, is_dir=True) as temporary:
        (temporary / "ours").write_text("x")
        target.mkdir()
        (target / "theirs").write_text("y")
    assert [p.name for p in target.iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["cache-entry"]


def test_default_permissions_do_not_follow_links(tmp_path: Path) -> None:
    outside = tmp_path / "source.nii.gz"
    outside.write_text("x")
    os.chmod(outside, 0o600)
    folder = tmp_path / "folder"
    folder.mkdir(mode=0o700)
    (folder / "link.nii.gz").symlink_to(outside)
    give_default_permissions(folder)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600, "a linked source file keeps its permissions"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~_umask()


# A real full disk, ``ulimit -f`` and a read-only file system: one line saying why, and nothing left behind.

_LABELS_ZYX = (40, 64, 64)  # 160 KB of uint8 labels as .nii: more than the 64 KB tmpfs holds


def _label_map_args() -> tuple[np.ndarray, Geometry]:
    labels = np.random.default_rng(0).integers(0, 14, _LABELS_ZYX).astype(np.uint8)  # compresses poorly
    return labels, Geometry(size=_LABELS_ZYX[::-1], spacing=(1.5, 1.5, 3.0), origin=(0.0, 0.0, 0.0),
                            direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))  # fmt: skip


@pytest.mark.parametrize("suffix", LABEL_MAP_SUFFIXES)
def test_a_full_disk_gives_one_line_and_no_partial_file(tmp_path: Path, suffix: str) -> None:
    labels, geometry = _label_map_args()
    with tmpfs(tmp_path / "disk") as disk:
        target = disk / f"seg{suffix}"
        with pytest.raises(OutputError) as caught:
            write_label_map(labels, geometry, target)
        free = shutil.disk_usage(disk).free // 1024
        needs = f"needs ~164.0 KB, {free}.0 KB free"
        assert str(caught.value) == f"cannot write {target}: no space left on device ({needs})"
        assert list(disk.iterdir()) == []


def test_a_full_disk_stops_any_atomic_output(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        fill(disk)
        target = disk / "volumes.csv"
        with pytest.raises(OutputError) as caught, atomic_output(target, overwrite=False) as temporary:
            temporary.write_bytes(b"label,volume_ml\n" * 1000)
        assert str(caught.value) == f"cannot write {target}: no space left on device (0 bytes free)"
        assert caught.value.errno == errno.ENOSPC
        assert [p.name for p in disk.iterdir()] == [".filler"]


def test_a_read_only_file_system_gives_one_line(tmp_path: Path) -> None:
    labels, geometry = _label_map_args()
    with tmpfs(tmp_path / "ro", read_only=True) as folder:
        target = folder / "seg.nii.gz"
        with pytest.raises(OutputError) as caught:
            write_label_map(labels, geometry, target)
        assert str(caught.value) == f"cannot write {target}: read-only file system"
        assert list(folder.iterdir()) == []


_WRITE_UNDER_LIMIT = """
import sys
import numpy as np
from GASACore.errors import OutputError
from GASACore.io.geometry import Geometry
from GASACore.io.writer import write_label_map
labels = np.random.default_rng(0).integers(0, 14, (40, 64, 64)).astype(np.uint8)
geometry = Geometry(size=(64, 64, 40), spacing=(1.5, 1.5, 3.0), origin=(0.0, 0.0, 0.0),
                    direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
try:
    write_label_map(labels, geometry, sys.argv[1])
except OutputError as err:
    print(err)
    sys.exit(3)
"""


@pytest.mark.parametrize("suffix", LABEL_MAP_SUFFIXES)
def test_the_file_size_limit_gives_one_line_and_no_partial_file(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"seg{suffix}"
    result = run_with_file_size_limit(["-c", _WRITE_UNDER_LIMIT, str(target)], limit_bytes=32 * 1024)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == (
        f"cannot write {target}: file too large for the file size limit (ulimit -f) of 32.0 KB (needs ~164.0 KB)"
    )
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_an_upper_case_label_map_include_its_lower_case_one(tmp_path: Path) -> None:
    """write_label_map writes OUT.NII.GZ as .partial-...-OUT.nii.gz first (ITK needs the lower-case suffix)."""
    for name in ("OUT.nii.gz", "OUT.NII.GZ", "other.nii.gz"):
        (tmp_path / f".partial-0123456789ab-{name}").write_bytes(b"")
    assert [p.name for p in stale_temporaries(tmp_path / "OUT.NII.GZ")] == [
        ".partial-0123456789ab-OUT.NII.GZ",
        ".partial-0123456789ab-OUT.nii.gz",
    ]
    assert [p.name for p in stale_temporaries(tmp_path / "OUT.nii.gz")] == [".partial-0123456789ab-OUT.nii.gz"]
