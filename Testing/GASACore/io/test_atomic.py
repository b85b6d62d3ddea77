"""atomic_output: outputs appear complete or not at all, with normal permissions, never clobbering by accident."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from GASACore.io import atomic_output, give_default_permissions


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
