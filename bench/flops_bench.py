"""Parameters and MACs (thop's rules) of every network at the paper's BTCV plan, and the paper's Table 4.

Counts one forward pass of a 1 x 1 x 48 x 192 x 192 input (the paper's counting input) with
GASACore.network.complexity on the meta device: nothing is computed, so it takes seconds on a CPU.

Two tables:

1. Table 4 as the paper counted it, on nnU-Net v1's Generic_UNet topology: nnU-Net v1 and GASA v1 are counted
   directly; +CBAM / +AT / +MAT are nnU-Net v1 plus the block's own parameters and MACs (the blocks leave the
   decoder unchanged, so their cost does not depend on the topology around them).
2. Every network of this project as it is trained (nnU-Net v2 topology; MONAI's V-Net and UNETR; nnMamba where
   mamba_ssm's CUDA kernels exist).

    python bench/flops_bench.py [--classes 14]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import nn

from GASACore.network import (
    GASAUNETR,
    PAPER_BTCV,
    UNETR,
    ATPlainConvUNet,
    CBAMPlainConvUNet,
    FixedPatchPlainConvUNet,
    FixedPatchResidualEncoderUNet,
    GASANNMamba,
    GASAPlainConvUNet,
    GASAPlainConvUNetV1,
    GASAResidualEncoderUNet,
    GASAVNet,
    MATPlainConvUNet,
    NNMamba,
    PlainConvUNetV1,
    VNet,
    count_complexity,
    network_arch_kwargs,
    resolve_operations,
)

INPUT = (1, 1, *PAPER_BTCV.patch_size)
TABLE_4 = {  # the paper's Table 4: Params (M, in fact 2^20) and FLOPs (G, thop MACs / 1e9)
    "nnU-Net": (29.54, 662.9),
    "+CBAM": (29.57, 662.9),
    "+AT": (29.54, 662.9),
    "+MAT": (30.35, 662.9),
    "+GASA": (30.55, 663.2),
}


def _plan_network(cls: type, classes: int, residual: bool = False) -> Callable[[], nn.Module]:
    kwargs = resolve_operations(network_arch_kwargs("nnunet-resenc" if residual else "nnunet", PAPER_BTCV))
    return lambda: cls(
        input_channels=1, num_classes=classes, deep_supervision=False, patch_size=PAPER_BTCV.patch_size, **kwargs
    )


def _backbone(cls: type, classes: int) -> Callable[[], nn.Module]:
    return lambda: cls(input_channels=1, num_classes=classes, patch_size=PAPER_BTCV.patch_size)


def _count(make: Callable[[], nn.Module]) -> tuple[int, int]:
    with torch.device("meta"):
        network = make()
    result = count_complexity(network, INPUT)
    return result.parameters, result.macs


def table_4(classes: int) -> list[str]:
    v1_params, v1_macs = _count(_plan_network(PlainConvUNetV1, classes))
    plain_params, plain_macs = _count(_plan_network(FixedPatchPlainConvUNet, classes))
    rows = {"nnU-Net": (v1_params, v1_macs), "+GASA": _count(_plan_network(GASAPlainConvUNetV1, classes))}
    for name, cls in (("+CBAM", CBAMPlainConvUNet), ("+AT", ATPlainConvUNet), ("+MAT", MATPlainConvUNet)):
        params, macs = _count(_plan_network(cls, classes))
        rows[name] = (v1_params + params - plain_params, v1_macs + macs - plain_macs)
    lines = [
        "| network (nnU-Net v1 topology) | parameters | Mi (2^20) | Table 4 | MACs G | Table 4 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in TABLE_4:
        params, macs = rows[name]
        paper_params, paper_macs = TABLE_4[name]
        lines.append(
            f"| {name} | {params:,} | {params / 2**20:.2f} | {paper_params:.2f} | {macs / 1e9:.1f} | {paper_macs:.1f} |"
        )
    return lines


def ours(classes: int) -> list[str]:
    networks: dict[str, Callable[[], nn.Module]] = {
        "nnunet (PlainConvUNet v2)": _plan_network(FixedPatchPlainConvUNet, classes),
        "gasa-unet": _plan_network(GASAPlainConvUNet, classes),
        "nnunet + CBAM": _plan_network(CBAMPlainConvUNet, classes),
        "nnunet + AT": _plan_network(ATPlainConvUNet, classes),
        "nnunet + MAT": _plan_network(MATPlainConvUNet, classes),
        "nnunet-resenc": _plan_network(FixedPatchResidualEncoderUNet, classes, residual=True),
        "gasa-l": _plan_network(GASAResidualEncoderUNet, classes, residual=True),
        "V-Net (MONAI)": _backbone(VNet, classes),
        "V-Net + GASA": _backbone(GASAVNet, classes),
        "UNETR (MONAI)": _backbone(UNETR, classes),
        "UNETR + GASA": _backbone(GASAUNETR, classes),
        "nnMamba": _backbone(NNMamba, classes),
        "nnMamba + GASA": _backbone(GASANNMamba, classes),
    }
    lines = ["| network (as trained here) | parameters | Mi (2^20) | MACs G |", "| --- | ---: | ---: | ---: |"]
    for name, make in networks.items():
        try:
            params, macs = _count(make)
        except RuntimeError as err:  # nnMamba without CUDA / mamba_ssm
            reason = "no CUDA device" if "no CUDA" in str(err) else "mamba_ssm missing"
            lines.append(f"| {name} | not built here ({reason}; needs mamba_ssm's CUDA kernels) | | |")
            continue
        lines.append(f"| {name} | {params:,} | {params / 2**20:.2f} | {macs / 1e9:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=14, help="output classes incl. background (BTCV: 14)")
    args = parser.parse_args()
    print(f"input {INPUT}, {args.classes} classes, torch {torch.__version__}; MACs by thop's rules\n")
    print("\n".join(table_4(args.classes)))
    print()
    print("\n".join(ours(args.classes)))


if __name__ == "__main__":
    main()
