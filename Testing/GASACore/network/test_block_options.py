"""GASABlockOptions: the one place GASA block defaults, validation and keyword names live."""

from __future__ import annotations

import pytest

from GASACore.network import GASABlockOptions, PositionalEmbedding


def test_defaults_are_the_papers() -> None:
    options = GASABlockOptions()
    assert (options.dim, options.heads, options.qkv_norm, options.dropout) == (25, 5, False, 0.5)
    assert options.positional_embedding is PositionalEmbedding.VOXELS


def test_json_and_network_keyword_round_trips() -> None:
    options = GASABlockOptions(dim=50, heads=10, positional_embedding="tokens", qkv_norm=True, dropout=0.1)
    assert options.to_json() == {
        "dim": 50,
        "heads": 10,
        "positional_embedding": "tokens",
        "qkv_norm": True,
        "dropout": 0.1,
    }
    kwargs = options.to_network_kwargs()
    assert kwargs == {"gasa_dim": 50, "gasa_heads": 10, "gasa_pe": "tokens", "gasa_qkv_norm": True, "gasa_dropout": 0.1}
    assert GASABlockOptions.from_json(options.to_json()) == options
    assert GASABlockOptions.from_network_kwargs({**kwargs, "n_stages": 6, "patch_size": [8, 8, 8]}) == options
    remaining = {**kwargs, "n_stages": 6}
    assert GASABlockOptions.pop_network_kwargs(remaining) == options and remaining == {"n_stages": 6}


def test_partial_sources_take_defaults() -> None:
    assert GASABlockOptions.from_json({"heads": 1}) == GASABlockOptions(heads=1)
    assert GASABlockOptions.from_json(None) == GASABlockOptions()
    assert GASABlockOptions.from_network_kwargs({"gasa_pe": "none"}).positional_embedding is PositionalEmbedding.NONE
    assert GASABlockOptions().replace(dim=10, heads=2).to_network_kwargs()["gasa_dim"] == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dim": 25, "heads": 4}, r"multiple of heads .*dim=25, heads=4"),
        ({"dim": 0}, r"dim must be a positive integer, got 0"),
        ({"heads": 2.5}, r"heads must be a positive integer, got 2\.5"),
        ({"dim": True}, r"dim must be a positive integer, got True"),
        ({"positional_embedding": "sinusoidal"}, r"positional_embedding must be one of \['none', 'tokens', 'voxels'\]"),
        ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\), got 1\.0"),
        ({"qkv_norm": "yes"}, r"qkv_norm must be true or false, got 'yes'"),
    ],
)
def test_invalid_options_say_what_was_expected(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GASABlockOptions(**changes)


def test_unknown_json_keys_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown GASABlockOptions keys \['pe'\]; expected some of \['dim'"):
        GASABlockOptions.from_json({"pe": "voxels"})
