"""The network registry: one consistent entry per network, importable without torch."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from GASACore.network import NETWORKS, GASABlockOptions, block_networks, network_for_class_name, network_spec

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_entry_is_consistent(name: str) -> None:
    spec = NETWORKS[name]
    assert spec.name == name
    built = spec.network_class()
    assert built.__name__ == spec.class_path.rsplit(".", 1)[-1] in spec.nnunet_class_names
    planned_module, _, planned_name = spec.plans_class_path.rpartition(".")
    assert planned_name in spec.nnunet_class_names
    assert issubclass(built, getattr(importlib.import_module(planned_module), planned_name))
    assert spec.plans_take_patch_size == (spec.plans_class_path == spec.class_path)
    for class_name in spec.nnunet_class_names:
        assert network_for_class_name(class_name) is spec
        assert network_for_class_name(f"some.module.{class_name}") is spec


def test_names_classes_and_variants() -> None:
    assert set(NETWORKS) == {"nnunet", "nnunet-resenc", "gasa-unet", "gasa-l"}
    assert block_networks() == ("gasa-unet", "gasa-l")
    assert NETWORKS["gasa-l"].residual_encoder and not NETWORKS["gasa-unet"].residual_encoder
    assert NETWORKS["gasa-unet"].block_options is GASABlockOptions and NETWORKS["nnunet"].block_options is None
    assert network_for_class_name("dynamic_network_architectures.architectures.unet.PlainConvUNet").name == "nnunet"
    with pytest.raises(ValueError, match=r"unknown network 'unetr'; expected one of \['gasa-l'"):
        network_spec("unetr")
    with pytest.raises(ValueError, match=r"unsupported network class 'UNETR'; supported: \["):
        network_for_class_name("UNETR")


def test_block_options_are_parsed_per_network() -> None:
    assert network_spec("gasa-l").parse_block_options(None) == GASABlockOptions()
    assert network_spec("gasa-l").parse_block_options({"heads": 1}) == GASABlockOptions(heads=1)
    assert network_spec("nnunet").parse_block_options({}) is None
    with pytest.raises(ValueError, match=r"'nnunet-resenc' has no block.*\['dim'\]"):
        network_spec("nnunet-resenc").parse_block_options({"dim": 25})


def test_registry_plans_and_options_import_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from GASACore.network import NETWORKS, PAPER_BTCV, GASABlockOptions, nnunet_architecture\n"
        "arch = nnunet_architecture('gasa-unet', PAPER_BTCV, GASABlockOptions(dim=50, heads=10))\n"
        "print(arch['network_class_name'], arch['arch_kwargs']['gasa_dim'], sorted(NETWORKS))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["GASACore.network.unets.GASAPlainConvUNet", "50"]
