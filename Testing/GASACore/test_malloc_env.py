"""Host memory settings of the CLI: only when the user chose none, only with transparent huge pages and before
torch is imported, set for real in a fresh process; the module imports neither torch nor numpy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from GASACore.malloc_env import (
    USER_MALLOC_SETTINGS,
    apply_malloc_defaults,
    glibc,
    huge_pages_available,
    malloc_tuning_wanted,
    release_free_memory,
)


@pytest.mark.parametrize("name", USER_MALLOC_SETTINGS)
def test_a_user_setting_is_kept(name: str) -> None:
    assert not malloc_tuning_wanted({name: "1"})


def test_switched_off_or_glibc_tunables_keep_the_defaults() -> None:
    assert not malloc_tuning_wanted({"GASA_MALLOC_TUNING": "0"})
    assert not malloc_tuning_wanted({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"})
    assert malloc_tuning_wanted({"GLIBC_TUNABLES": "glibc.rtld.nns=2", "GASA_MALLOC_TUNING": "1"})


def test_huge_page_modes(tmp_path: Path) -> None:
    setting = tmp_path / "enabled"
    setting.write_text("always [madvise] never\n")
    assert huge_pages_available(setting)
    setting.write_text("always madvise [never]\n")
    assert not huge_pages_available(setting)
    assert not huge_pages_available(tmp_path / "missing")


def test_not_applied_once_torch_is_imported() -> None:
    import torch  # noqa: F401 - this test process has torch loaded, as a library user would

    environ: dict[str, str] = {}
    assert apply_malloc_defaults(environ) is False and environ == {}


def test_trimming_is_harmless() -> None:
    blocks = [bytearray(1 << 16) for _ in range(200)]
    del blocks
    assert isinstance(release_free_memory(), bool)


def test_applied_in_a_fresh_process_without_importing_torch() -> None:
    code = (
        "import sys\nfrom GASACore.malloc_env import apply_malloc_defaults\nimport os\n"
        "print(apply_malloc_defaults(), os.environ.get('THP_MEM_ALLOC_ENABLE'), 'torch' in sys.modules, "
        "'numpy' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k not in USER_MALLOC_SETTINGS and k != "GASA_MALLOC_TUNING"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    applies = glibc() is not None and huge_pages_available()
    assert out.split() == (["True", "1"] if applies else ["False", "None"]) + ["False", "False"]
