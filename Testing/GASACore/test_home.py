"""$GASA_HOME: where caches and installed models live."""

from __future__ import annotations

from pathlib import Path

import pytest

from GASACore.home import cache_dir, gasa_home


def test_gasa_home_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GASA_HOME", str(tmp_path / "gasa"))
    assert gasa_home() == tmp_path / "gasa"
    assert cache_dir("bundles") == tmp_path / "gasa" / "cache" / "bundles"
    assert not (tmp_path / "gasa").exists(), "asking for the folder creates nothing"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_default_is_dot_gasasegmenter_in_the_user_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv("GASA_HOME", raising=False)
    else:
        monkeypatch.setenv("GASA_HOME", value)
    assert gasa_home() == tmp_path / ".gasasegmenter"


def test_tilde_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GASA_HOME", "~/models-home")
    assert gasa_home() == tmp_path / "models-home"


@pytest.mark.parametrize("part", ["", "/etc", "../outside", "a/../../b"])
def test_cache_names_stay_inside_the_cache(part: str) -> None:
    with pytest.raises(ValueError, match="relative names inside the cache"):
        cache_dir(part)
