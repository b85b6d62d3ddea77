"""Zipped bundles: unpacked once into $GASA_HOME/cache/bundles/<sha256>, reused, never left in the temp folder."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import SimpleITK as sitk
from bundle_helpers import zip_folder

from GASACore.bundle import ZipLimits, load_model, sha256_of, unpack_bundle_zip
from GASACore.errors import ModelError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def empty_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR (and tempfile's cached choice) pointing at a new empty folder; GASA_HOME at another."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setenv("GASA_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    return folder


def _inodes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_ino for p in sorted(folder.rglob("*"))}


def test_two_loads_unpack_once_and_leave_the_temp_folder_empty(
    tiny_bundle_zip: Path, empty_tmpdir: Path, tmp_path: Path
) -> None:
    first = load_model(tiny_bundle_zip)
    cache = tmp_path / "home" / "cache" / "bundles"
    digest = sha256_of(tiny_bundle_zip)
    assert first.root == cache / digest / "model" and [p.name for p in cache.iterdir()] == [digest]
    unpacked = _inodes(cache)
    second = load_model(tiny_bundle_zip)
    assert second.root == first.root and second.labels == first.labels
    assert _inodes(cache) == unpacked, "the second load reused the unpacked folder instead of unpacking again"
    assert list(empty_tmpdir.iterdir()) == []
    # Same bytes under another name: same cache entry.
    copy = tmp_path / "renamed.zip"
    copy.write_bytes(tiny_bundle_zip.read_bytes())
    assert load_model(copy).root == first.root and [p.name for p in cache.iterdir()] == [digest]


def test_gasa_segment_on_a_zip_leaves_the_temp_folder_empty(
    tiny_bundle_zip: Path, empty_tmpdir: Path, tmp_path: Path, example_ct: Path
) -> None:
    image = sitk.ReadImage(str(example_ct))
    ct = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.Cast(image[20:84, 20:84, 40:80], sitk.sitkInt16), str(ct))
    load_model(tiny_bundle_zip)  # first run (in-process) unpacks into the cache
    cached = _inodes(tmp_path / "home" / "cache")
    out = tmp_path / "seg.nii.gz"
    result = subprocess.run(
        [sys.executable, "-m", "GASACore.cli", str(ct), "-o", str(out), "-m", str(tiny_bundle_zip)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert sitk.ReadImage(str(out)).GetSize() == image[20:84, 20:84, 40:80].GetSize()
    assert _inodes(tmp_path / "home" / "cache") == cached, "gasa-segment reused the cache"
    assert list(empty_tmpdir.iterdir()) == []


def test_a_changed_zip_gets_its_own_folder_and_a_broken_cache_is_rebuilt(tiny_bundle: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = unpack_bundle_zip(zip_folder(tiny_bundle, tmp_path / "a.zip"), cache_root=cache)
    other = unpack_bundle_zip(zip_folder(tiny_bundle, tmp_path / "b.zip", inner="renamed"), cache_root=cache)
    assert first != other and len(list(cache.iterdir())) == 2
    (first / "model.json").unlink()  # a cache entry damaged by hand
    again = unpack_bundle_zip(tmp_path / "a.zip", cache_root=cache)
    assert again == first and (again / "model.json").is_file()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")], "no temporary folder left in the cache"


def test_concurrent_unpacking_gives_one_complete_folder(tiny_bundle_zip: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from GASACore.bundle import unpack_bundle_zip;"
        "print(unpack_bundle_zip(Path(sys.argv[1]), cache_root=Path(sys.argv[2])))"
    )
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tiny_bundle_zip), str(cache)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(4)
    ]
    folders = {run.communicate(timeout=120)[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert len(folders) == 1 and load_model(Path(folders.pop())).name == "tiny-btcv"
    assert [p.name for p in cache.iterdir()] == [sha256_of(tiny_bundle_zip)]


def test_zip_bombs_are_refused_before_extracting(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model/model.json", "{}")
        zf.writestr("model/fold_0.safetensors", b"\0" * (4 << 20))  # 4 MiB of zeros, a few KiB compressed
        for index in range(20):
            zf.writestr(f"model/extra_{index}.txt", "x")
    cache = tmp_path / "cache"
    expected = r"unpack to 4\.00 MiB \(4,194,326 bytes\), more than the limit of 1\.00 MiB \(1,048,576 bytes\)"
    with pytest.raises(ModelError, match=expected):
        unpack_bundle_zip(archive, cache_root=cache, limits=ZipLimits(max_bytes=1 << 20))
    with pytest.raises(ModelError, match=r"holds 22 members, more than the limit of 10"):
        unpack_bundle_zip(archive, cache_root=cache, limits=ZipLimits(max_members=10))
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.parametrize("member", ["../outside.txt", "/etc/evil", "model\\..\\x", "model/../../x"])
def test_unsafe_members_are_refused(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, "x")
        zf.writestr("model.json", "{}")
    with pytest.raises(ModelError, match="unsafe member"):
        unpack_bundle_zip(archive, cache_root=tmp_path / "cache")
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "cache").exists()


def test_symbolic_link_members_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    link = zipfile.ZipInfo("model/fold_0.safetensors")
    link.external_attr = (0o120777 << 16) | 0
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model/model.json", "{}")
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ModelError, match="unsafe member"):
        unpack_bundle_zip(archive, cache_root=tmp_path / "cache")


def test_zip_without_model_json_leaves_no_cache_entry(tmp_path: Path) -> None:
    archive = tmp_path / "nomodel.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "no model here")
    with pytest.raises(ModelError, match=r"no model\.json"):
        unpack_bundle_zip(archive, cache_root=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
