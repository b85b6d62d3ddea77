"""Options of the blocks a network adds to its U-Net (the GASA block today), as plain, torch-free data.

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

__all__ = ["BlockOptions", "GASABlockOptions", "PositionalEmbedding"]

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


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or int(value) != value or value < 1:
        raise ValueError(f"GASA {name} must be a positive integer, got {value!r}")
    return int(value)


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
        dim, heads = _integer("dim", self.dim), _integer("heads", self.heads)
        if dim % heads:
            raise ValueError(f"GASA dim must be a positive multiple of heads (dim % heads == 0), got {dim=}, {heads=}")
        try:
            mode = PositionalEmbedding(_plain(self.positional_embedding))
        except ValueError:
            choices = list(PositionalEmbedding.values())
            raise ValueError(
                f"GASA positional_embedding must be one of {choices}, got {self.positional_embedding!r}"
            ) from None
        if not isinstance(self.qkv_norm, (bool, numbers.Integral)) or self.qkv_norm not in (0, 1):
            raise ValueError(f"GASA qkv_norm must be true or false, got {self.qkv_norm!r}")
        dropout = self.dropout
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"GASA dropout must be a probability in [0, 1), got {dropout!r}")
        values = {"dim": dim, "heads": heads, "positional_embedding": mode, "qkv_norm": bool(self.qkv_norm)}
        for name, value in {**values, "dropout": float(dropout)}.items():
            object.__setattr__(self, name, value)
