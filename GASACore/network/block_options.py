"""Options of the blocks a network adds to its backbone (GASA, and the CBAM / AT / MAT baselines), as plain data.

A block's options are a frozen dataclass whose fields name the network's keyword arguments in their
metadata (``gasa_dim`` ...). The same object is written into bundles (``to_json``: field names), into
nnU-Net plans (``to_network_kwargs``: keyword names) and read back from either, so a default or a
keyword name exists once. A new block adds one subclass of :class:`BlockOptions`.

Examples:
    >>> GASABlockOptions().to_network_kwargs()
    {'gasa_dim': 25, 'gasa_heads': 5, 'gasa_pe': 'voxels', 'gasa_qkv_norm': False, 'gasa_dropout': 0.5}
    >>> GASABlockOptions.from_json({"dim": 50, "heads": 10}).to_json()["positional_embedding"]
    'voxels'
    >>> GASABlockOptions.from_network_kwargs({"gasa_dim": 10, "gasa_heads": 2, "n_stages": 4}).dim
    10
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, TypeVar

from GASACore.enums import StrEnum

__all__ = [
    "ATBlockOptions",
    "BlockOptions",
    "CBAMBlockOptions",
    "GASABlockOptions",
    "MATBlockOptions",
    "PositionalEmbedding",
]

_T = TypeVar("_T", bound="BlockOptions")


class PositionalEmbedding(StrEnum):
    """Where the GASA block's learnable positional embedding is added."""

    NONE = "none"  #: no embedding (the paper's "NoPE")
    TOKENS = "tokens"  #: ``(1, X+Y+Z, dim)`` added to the tokens (the paper's "BPE")
    VOXELS = "voxels"  #: ``(1, 1, X, Y, Z)`` added to the GASA feature (the paper's "APE", default)


@dataclass(frozen=True)
class BlockOptions:
    """Base of every block's options: JSON and network keyword-argument round trips.

    Subclasses declare each field with ``field(default=..., metadata={"kwarg": "<network keyword>"})``.
    """

    @classmethod
    def network_kwarg_names(cls) -> dict[str, str]:
        """Field name -> the network's keyword argument name."""
        return {f.name: f.metadata["kwarg"] for f in fields(cls)}

    @classmethod
    def from_json(cls: type[_T], data: Mapping[str, Any] | None) -> _T:
        """Options from a bundle's ``block_options`` (field names; missing ones take their defaults).

        Raises:
            ValueError: an unknown key, or an invalid value.
        """
        data = dict(data or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; expected some of {known}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """Every field by name, enums as their string values."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def to_network_kwargs(self) -> dict[str, Any]:
        """The network's keyword arguments (plain JSON values, as nnU-Net plans store them)."""
        names = self.network_kwarg_names()
        return {names[key]: value for key, value in self.to_json().items()}

    @classmethod
    def from_network_kwargs(cls: type[_T], kwargs: Mapping[str, Any]) -> _T:
        """Options from a network's (or an nnU-Net plan's ``arch_kwargs``) keyword arguments.

        Other keywords are ignored; missing block keywords take their defaults.
        """
        return cls(**{name: kwargs[kwarg] for name, kwarg in cls.network_kwarg_names().items() if kwarg in kwargs})

    @classmethod
    def pop_network_kwargs(cls: type[_T], kwargs: dict[str, Any]) -> _T:
        """Like :meth:`from_network_kwargs`, and removes the block's keywords from ``kwargs`` (in place)."""
        options = cls.from_network_kwargs(kwargs)
        for kwarg in cls.network_kwarg_names().values():
            kwargs.pop(kwarg, None)
        return options

    def replace(self: _T, **changes: Any) -> _T:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _integer(block: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or int(value) != value or value < 1:
        raise ValueError(f"{block} {name} must be a positive integer, got {value!r}")
    return int(value)


def _boolean(block: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, numbers.Integral)) or value not in (0, 1):
        raise ValueError(f"{block} {name} must be true or false, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class GASABlockOptions(BlockOptions):
    """Options of the GASA block (defaults: the paper's, ``design/gasa-block.md``).

    Attributes:
        dim: token dimension ``n`` (network keyword ``gasa_dim``); 25.
        heads: attention heads, dividing ``dim`` (``gasa_heads``); 5.
        positional_embedding: ``voxels`` (APE, default), ``tokens`` (BPE) or ``none`` (``gasa_pe``).
        qkv_norm: LayerNorm after the qkv projection (``gasa_qkv_norm``); off, as in the paper.
        dropout: dropout probability on the GASA feature in training, in [0, 1) (``gasa_dropout``); 0.5.

    Raises:
        ValueError: a non-positive or non-integer ``dim`` / ``heads``, ``dim % heads != 0``, an unknown
            embedding, a non-boolean ``qkv_norm`` or a dropout outside [0, 1).
    """

    dim: int = field(default=25, metadata={"kwarg": "gasa_dim"})
    heads: int = field(default=5, metadata={"kwarg": "gasa_heads"})
    positional_embedding: PositionalEmbedding = field(default=PositionalEmbedding.VOXELS, metadata={"kwarg": "gasa_pe"})
    qkv_norm: bool = field(default=False, metadata={"kwarg": "gasa_qkv_norm"})
    dropout: float = field(default=0.5, metadata={"kwarg": "gasa_dropout"})

    def __post_init__(self) -> None:
        dim, heads = _integer("GASA", "dim", self.dim), _integer("GASA", "heads", self.heads)
        if dim % heads:
            raise ValueError(f"GASA dim must be a positive multiple of heads (dim % heads == 0), got {dim=}, {heads=}")
        try:
            mode = PositionalEmbedding(_plain(self.positional_embedding))
        except ValueError:
            choices = list(PositionalEmbedding.values())
            raise ValueError(
                f"GASA positional_embedding must be one of {choices}, got {self.positional_embedding!r}"
            ) from None
        qkv_norm = _boolean("GASA", "qkv_norm", self.qkv_norm)
        dropout = self.dropout
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"GASA dropout must be a probability in [0, 1), got {dropout!r}")
        values = {"dim": dim, "heads": heads, "positional_embedding": mode, "qkv_norm": qkv_norm}
        for name, value in {**values, "dropout": float(dropout)}.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class CBAMBlockOptions(BlockOptions):
    """Options of the CBAM baseline (:class:`~GASACore.network.cbam.CBAM3d`).

    Attributes:
        reduction: channel-MLP reduction ratio ``r`` (``cbam_reduction``); 8, which matches Table 4's count.
        spatial_kernel: odd side of the spatial-attention convolution (``cbam_spatial_kernel``); 7, as CBAM.

    Raises:
        ValueError: a non-positive or non-integer value, or an even kernel.
    """

    reduction: int = field(default=8, metadata={"kwarg": "cbam_reduction"})
    spatial_kernel: int = field(default=7, metadata={"kwarg": "cbam_spatial_kernel"})

    def __post_init__(self) -> None:
        kernel = _integer("CBAM", "spatial_kernel", self.spatial_kernel)
        if kernel % 2 == 0:
            raise ValueError(f"CBAM spatial_kernel must be a positive odd size, got {kernel}")
        object.__setattr__(self, "reduction", _integer("CBAM", "reduction", self.reduction))
        object.__setattr__(self, "spatial_kernel", kernel)


@dataclass(frozen=True)
class ATBlockOptions(BlockOptions):
    """Options of the axial-attention baseline (:class:`~GASACore.network.axial_attention.AxialSelfAttention3d`).

    Attributes:
        heads: attention heads, dividing the bottleneck channels (``at_heads``); 8.
        projections: learned Q/K/V and output maps per axis (``at_projections``); off, which matches Table 4.

    Raises:
        ValueError: a non-positive or non-integer ``heads``, a non-boolean ``projections``.
    """

    heads: int = field(default=8, metadata={"kwarg": "at_heads"})
    projections: bool = field(default=False, metadata={"kwarg": "at_projections"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", _integer("AT", "heads", self.heads))
        object.__setattr__(self, "projections", _boolean("AT", "projections", self.projections))


@dataclass(frozen=True)
class MATBlockOptions(BlockOptions):
    """Options of the medical axial transformer baseline (:class:`~GASACore.network.medical_axial.MedicalAxialBlock3d`).

    Attributes:
        heads: heads of each gated axial attention (``mat_heads``); 1, which matches Table 4.

    Raises:
        ValueError: a non-positive or non-integer ``heads``.
    """

    heads: int = field(default=1, metadata={"kwarg": "mat_heads"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", _integer("MAT", "heads", self.heads))
