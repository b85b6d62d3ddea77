"""Shared fixtures: paths to the real CT data in ../shared/data and small network plans."""

from __future__ import annotations

import locale
import os

# Tests run tiny networks, for which OpenMP's thread barriers cost more than a second core gains (16x
# slower with 2 threads when the other core is busy). Set before torch is imported; also inherited by
# the gasa-segment / training subprocesses the tests start. Benchmarks (bench/) use every core.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    candidates = [Path(os.environ["GASA_SHARED_DATA"])] if "GASA_SHARED_DATA" in os.environ else []
    candidates += [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "Resources" / "SampleData"]
    for candidate in candidates:
        if (candidate / "totalsegmentator" / "example_ct.nii.gz").is_file():
            return candidate
    raise FileNotFoundError(
        f"real CT data not found in {[str(c) for c in candidates]}; set GASA_SHARED_DATA to the shared data folder"
    )


@pytest.fixture(scope="session", autouse=True)
def gasa_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``GASA_HOME`` (caches, installed models) in a fresh folder for the whole run, never the user's home.

    Set in ``os.environ``, so the gasa-segment / gasa-train subprocesses the tests start use it too.
    """
    home = tmp_path_factory.mktemp("gasa_home")
    previous = os.environ.get("GASA_HOME")
    os.environ["GASA_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("GASA_HOME", None)
    else:
        os.environ["GASA_HOME"] = previous


@pytest.fixture(autouse=True)
def locale_unchanged() -> Iterator[None]:
    """Fail a test after which the process's C locale differs (a C library that switches to "C" turns Python's
    default text encoding into ASCII for every later test and subprocess read); the locale is restored."""
    before = locale.setlocale(locale.LC_ALL)
    yield
    after = locale.setlocale(locale.LC_ALL)
    if after != before:
        locale.setlocale(locale.LC_ALL, before)
        pytest.fail(f"the test changed the process locale from {before!r} to {after!r}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder holding ``totalsegmentator/`` (the real public CT sample data)."""
    return _shared_data()


@pytest.fixture(scope="session")
def example_ct(shared_data: Path) -> Path:
    return shared_data / "totalsegmentator" / "example_ct.nii.gz"
