"""OpenMP defaults of the CLI: set only when the user chose no wait policy, only before torch is imported, and
the module itself never imports torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from GASACore.openmp_env import USER_WAIT_SETTINGS, apply_openmp_defaults, openmp_defaults


def test_defaults_when_the_user_chose_nothing() -> None:
    assert openmp_defaults({"OMP_NUM_THREADS": "2"}) == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("name", USER_WAIT_SETTINGS)
def test_a_user_choice_is_kept(name: str) -> None:
    environ = {name: "ACTIVE" if name == "OMP_WAIT_POLICY" else "1"}
    assert openmp_defaults(environ) == {}
    assert apply_openmp_defaults(environ) == {} and len(environ) == 1


def test_not_applied_once_torch_is_imported() -> None:
    import torch  # noqa: F401 - this test process has torch loaded, as the CLI would after the fact

    environ: dict[str, str] = {}
    assert apply_openmp_defaults(environ) == {} and environ == {}


def test_applied_before_torch_in_a_fresh_process_without_importing_torch() -> None:
    code = (
        "import os, sys; os.environ.pop('OMP_WAIT_POLICY', None)\n"
        "from GASACore.openmp_env import apply_openmp_defaults\n"
        "print(apply_openmp_defaults(), os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in USER_WAIT_SETTINGS}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "{'OMP_WAIT_POLICY': 'PASSIVE'} PASSIVE False"
