"""The paper's Tables 1 and 2 as data: their rows (registry network names), metric columns and data sets.

Table 1 compares backbones with and without the GASA block (nnMamba, UNETR, V-Net, nnU-Net, plus GASA-L);
Table 2 compares attention blocks at GASA's place in nnU-Net (CBAM, AT, MAT, GASA, plus GASA-L). Each row
names the network of :data:`GASACore.network.registry.NETWORKS` it trains and the row its bracketed
difference is taken against (the backbone without GASA in Table 1, nnU-Net in Table 2). The paper's numbers
(percent, mean over classes) are kept with each row so the written table can be read next to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["DATASETS", "METRICS", "TABLES", "DatasetColumn", "Method", "TableSpec", "table_spec"]

#: The metric columns of every data set, in the paper's order, with their titles.
METRICS: tuple[tuple[str, str], ...] = (("dice", "Dice"), ("nsd", "NSD"))


@dataclass(frozen=True)
class DatasetColumn:
    """One data set column pair (Dice, NSD) of the tables.

    Attributes:
        key: ``btcv``, ``amos`` or ``kits23`` (also the label set the evaluation uses).
        title: the column title in the paper.
        default_dataset: the nnU-Net data set id ``gasa-train convert`` gives it by default.
    """

    key: str
    title: str
    default_dataset: int


#: The paper's three data sets, keyed by the ``--dataset`` value.
DATASETS: Mapping[str, DatasetColumn] = {
    "btcv": DatasetColumn("btcv", "BTCV", 17),
    "amos": DatasetColumn("amos", "AMOS", 218),
    "kits23": DatasetColumn("kits23", "KiTS23", 220),
}


@dataclass(frozen=True)
class Method:
    """One row of a table.

    Attributes:
        network: the registry name trained for this row (``gasa-unet``).
        title: the row title in the paper (``+GASA(Ours)``).
        baseline: the network of the row its differences are taken against; ``None`` for a baseline row.
        paper: the paper's values per data set key: ``{"btcv": (dice, nsd)}`` in percent; ``None`` for a skip.
        skips: data set key -> why the paper has no result there (written into the table, nothing is run).

    A row's learning rate and whether it needs CUDA are its network's (the registry's ``initial_lr`` and
    ``requires_cuda``: nnMamba 1e-4, CUDA only), not the table's.
    """

    network: str
    title: str
    baseline: str | None = None
    paper: Mapping[str, tuple[float, float] | None] = field(default_factory=dict)
    skips: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TableSpec:
    """A table of the paper: its number, caption and rows in order."""

    number: int
    caption: str
    methods: tuple[Method, ...]

    @property
    def networks(self) -> tuple[str, ...]:
        """The registry names of the rows, in order."""
        return tuple(m.network for m in self.methods)

    def method(self, network: str) -> Method:
        """The row of ``network``.

        Raises:
            ValueError: the table has no such row (the message lists its rows).
        """
        for method in self.methods:
            if method.network == network:
                return method
        raise ValueError(f"table {self.number} has no row {network!r}; its rows are {list(self.networks)}")


_NNUNET_PAPER = {"btcv": (81.52, 76.10), "amos": (89.75, 85.58), "kits23": (74.99, 64.83)}
_GASA_PAPER = {"btcv": (81.69, 76.03), "amos": (89.83, 85.64), "kits23": (75.97, 66.05)}
_GASA_L_PAPER = {"btcv": (82.41, 77.04), "amos": (89.87, 85.93), "kits23": (76.49, 67.21)}
_MAT_AMOS = "MAT cannot process asymmetric 3D features (the paper skips MAT on AMOS)"

_TABLE_1 = TableSpec(
    1,
    "Comparison of segmentation performance in diverse backbones on the BTCV, AMOS, and KiTS23 dataset.",
    (
        Method(
            "nnmamba",
            "nnMamba",
            paper={"btcv": (75.47, 67.05), "amos": (83.16, 73.00), "kits23": (64.39, 52.55)},
        ),
        Method(
            "nnmamba-gasa",
            "+GASA(Ours)",
            baseline="nnmamba",
            paper={"btcv": (76.27, 67.52), "amos": (84.31, 75.17), "kits23": (68.25, 56.01)},
        ),
        Method("unetr", "UNETR", paper={"btcv": (69.65, 59.18), "amos": (68.62, 51.65), "kits23": (59.38, 46.28)}),
        Method(
            "unetr-gasa",
            "+GASA(Ours)",
            baseline="unetr",
            paper={"btcv": (70.04, 59.87), "amos": (71.55, 55.00), "kits23": (59.87, 47.57)},
        ),
        Method("vnet", "V-Net", paper={"btcv": (78.32, 70.77), "amos": (77.15, 62.97), "kits23": (62.62, 50.47)}),
        Method(
            "vnet-gasa",
            "+GASA(Ours)",
            baseline="vnet",
            paper={"btcv": (78.47, 70.59), "amos": (79.12, 66.16), "kits23": (65.51, 53.27)},
        ),
        Method("nnunet", "nnUNet", paper=_NNUNET_PAPER),
        Method("gasa-unet", "+GASA(Ours)", baseline="nnunet", paper=_GASA_PAPER),
        Method("gasa-l", "+GASA-L(Ours)", baseline="nnunet", paper=_GASA_L_PAPER),
    ),
)

_TABLE_2 = TableSpec(
    2,
    "Comparison of segmentation performance with different axial attentions on the BTCV, AMOS and KiTS23 dataset.",
    (
        Method("nnunet", "nnUNet", paper=_NNUNET_PAPER),
        Method(
            "nnunet-cbam",
            "+CBAM",
            baseline="nnunet",
            paper={"btcv": (81.48, 75.84), "amos": (89.81, 85.58), "kits23": (74.88, 64.85)},
        ),
        Method(
            "nnunet-at",
            "+AT",
            baseline="nnunet",
            paper={"btcv": (81.35, 75.96), "amos": (89.62, 85.56), "kits23": (75.65, 65.57)},
        ),
        Method(
            "nnunet-mat",
            "+MAT",
            baseline="nnunet",
            paper={"btcv": (81.29, 75.83), "amos": None, "kits23": (75.27, 65.10)},
            skips={"amos": _MAT_AMOS},
        ),
        Method("gasa-unet", "+GASA(Ours)", baseline="nnunet", paper=_GASA_PAPER),
        Method("gasa-l", "+GASA-L(Ours)", baseline="nnunet", paper=_GASA_L_PAPER),
    ),
)

#: The reproducible tables by number.
TABLES: Mapping[int, TableSpec] = {1: _TABLE_1, 2: _TABLE_2}


def table_spec(number: int | str) -> TableSpec:
    """The table of that number (``1`` or ``2``).

    Raises:
        ValueError: another number.
    """
    try:
        return TABLES[int(number)]
    except (KeyError, ValueError):
        raise ValueError(f"table must be one of {sorted(TABLES)}, got {number!r}") from None
