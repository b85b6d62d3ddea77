"""The network registry: one consistent entry per network, importable without torch."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from GASACore.network import (
    NETWORKS,
    ATBlockOptions,
    CBAMBlockOptions,
    GASABlockOptions,
    MATBlockOptions,
    Topology,
    block_networks,
    network_for_class_name,
    network_spec,
    variant_networks,
)

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
        if spec.topology.follows_plan:
            assert network_for_class_name(f"some.module.{class_name}") is spec
        else:  # a fixed-topology backbone is only our class, never another library's of the same name
            assert network_for_class_name(spec.plans_class_path) is spec
            with pytest.raises(ValueError, match="unsupported network class"):
                network_for_class_name(f"some.module.{class_name}")


def test_names_classes_and_variants() -> None:
    assert set(NETWORKS) == {
        *("nnunet", "nnunet-resenc", "gasa-unet", "gasa-l", "nnunet-cbam", "nnunet-at", "nnunet-mat"),
        *("vnet", "vnet-gasa", "unetr", "unetr-gasa", "nnmamba", "nnmamba-gasa"),
    }
    assert block_networks() == (
        *("gasa-unet", "gasa-l", "nnunet-cbam", "nnunet-at", "nnunet-mat"),
        *("vnet-gasa", "unetr-gasa", "nnmamba-gasa"),
    )
    assert set(variant_networks()) == set(NETWORKS) - {"nnunet", "nnunet-resenc"}
    assert NETWORKS["gasa-l"].residual_encoder and not NETWORKS["gasa-unet"].residual_encoder
    assert NETWORKS["gasa-unet"].block_options is GASABlockOptions and NETWORKS["nnunet"].block_options is None
    assert network_for_class_name("dynamic_network_architectures.architectures.unet.PlainConvUNet").name == "nnunet"
    assert network_for_class_name("GASACore.network.monai_backbones.UNETR").name == "unetr"
    with pytest.raises(ValueError, match=r"unknown network 'swin-unetr'; expected one of \['gasa-l'"):
        network_spec("swin-unetr")
    with pytest.raises(ValueError, match=r"unsupported network class 'SwinUNETR'; supported: \["):
        network_for_class_name("SwinUNETR")
    with pytest.raises(ValueError, match=r"unsupported network class 'monai.networks.nets.VNet'"):
        network_for_class_name("monai.networks.nets.VNet")  # MONAI's class takes other keywords than our backbone


def test_topologies_options_and_learning_rates() -> None:
    topologies = {name: spec.topology for name, spec in NETWORKS.items()}
    assert {n for n, t in topologies.items() if t is Topology.NNUNET_UNET} == {
        *("nnunet", "nnunet-resenc", "gasa-unet", "gasa-l", "nnunet-cbam", "nnunet-at", "nnunet-mat")
    }
    assert topologies["vnet-gasa"] == "monai-vnet" and topologies["unetr"] == "monai-unetr"
    assert topologies["nnmamba-gasa"] == "nnmamba"
    assert [n for n, s in NETWORKS.items() if s.deep_supervision] == [
        n for n, t in topologies.items() if t is Topology.NNUNET_UNET
    ]
    assert {n: s.initial_lr for n, s in NETWORKS.items() if s.initial_lr} == {"nnmamba": 1e-4, "nnmamba-gasa": 1e-4}
    options = {n: s.block_options for n, s in NETWORKS.items()}
    assert options["nnunet-cbam"] is CBAMBlockOptions and options["nnunet-at"] is ATBlockOptions
    assert options["nnunet-mat"] is MATBlockOptions and options["vnet"] is None
    assert options["vnet-gasa"] is options["unetr-gasa"] is options["nnmamba-gasa"] is GASABlockOptions


def test_block_options_are_parsed_per_network() -> None:
    assert network_spec("gasa-l").parse_block_options(None) == GASABlockOptions()
    assert network_spec("gasa-l").parse_block_options({"heads": 1}) == GASABlockOptions(heads=1)
    assert network_spec("nnunet").parse_block_options({}) is None
    with pytest.raises(ValueError, match=r"'nnunet-resenc' has no block.*\['dim'\]"):
        network_spec("nnunet-resenc").parse_block_options({"dim": 25})
    assert network_spec("nnunet-cbam").parse_block_options({"reduction": 16}) == CBAMBlockOptions(reduction=16)
    assert CBAMBlockOptions().to_network_kwargs() == {"cbam_reduction": 8, "cbam_spatial_kernel": 7}
    assert ATBlockOptions.from_json({"projections": 1}).to_network_kwargs() == {"at_heads": 8, "at_projections": True}
    assert MATBlockOptions.from_network_kwargs({"mat_heads": 8, "n_stages": 4}).heads == 8
    with pytest.raises(ValueError, match="takes CBAMBlockOptions, got GASABlockOptions"):
        network_spec("nnunet-cbam").parse_block_options(GASABlockOptions())
    with pytest.raises(ValueError, match="CBAM spatial_kernel must be a positive odd size, got 4"):
        CBAMBlockOptions(spatial_kernel=4)
    with pytest.raises(ValueError, match=r"AT projections must be true or false, got 'yes'"):
        ATBlockOptions(projections="yes")
    with pytest.raises(ValueError, match=r"MAT heads must be a positive integer, got 0"):
        MATBlockOptions(heads=0)
    with pytest.raises(ValueError, match=r"unknown MATBlockOptions keys \['dim'\]"):
        network_spec("nnunet-mat").parse_block_options({"dim": 25})


def test_registry_plans_and_options_import_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from GASACore.network import NETWORKS, PAPER_BTCV, GASABlockOptions, Topology, nnunet_architecture\n"
        "arch = nnunet_architecture('gasa-unet', PAPER_BTCV, GASABlockOptions(dim=50, heads=10))\n"
        "vnet = nnunet_architecture('vnet-gasa', Topology.MONAI_VNET.plan_for(PAPER_BTCV.patch_size))\n"
        "print(arch['network_class_name'], arch['arch_kwargs']['gasa_dim'], vnet['arch_kwargs']['patch_size'])\n"
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
    assert result.stdout.split(maxsplit=2)[2].strip() == "[48, 192, 192]"
