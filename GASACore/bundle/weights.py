"""Reading and writing network weights without pickle.

Bundles store one safetensors file per fold. nnU-Net v2 checkpoints (``checkpoint_final.pth``) are
read with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from GASACore.errors import ModelError

__all__ = [
    "check_state_dict_fits",
    "load_nnunet_checkpoint",
    "load_safetensors",
    "read_nnunet_checkpoint",
    "save_safetensors",
]


def save_safetensors(state_dict: Mapping[str, torch.Tensor], path: Path) -> None:
    """Write a state dict as safetensors (contiguous CPU copies; shared storage is duplicated)."""
    tensors = {key: value.detach().to("cpu").contiguous().clone() for key, value in state_dict.items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors weight file onto the CPU."""
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"cannot read weight file {path}: expected safetensors, got unreadable data ({err})") from err


def _numpy_safe_globals() -> list[Any]:
    """numpy scalar and array types that stock nnU-Net checkpoints hold in their logs (``_best_ema`` etc.).

    Allowing them keeps ``weights_only=True`` (no arbitrary code) while reading ordinary nnU-Net folders.
    """
    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [core.multiarray.scalar, core.multiarray._reconstruct, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith("DType")]
    return allowed


def read_nnunet_checkpoint(path: Path, *, mmap: bool = False) -> dict[str, Any]:
    """An nnU-Net v2 checkpoint dict, loaded with ``weights_only=True`` (plus numpy's plain types)."""
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises pickle / zip / runtime errors for bad files
        raise ModelError(
            f"cannot load nnU-Net checkpoint {path} safely (weights_only=True): {type(err).__name__}: {err}"
        ) from err
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise ModelError(f"{path} is not an nnU-Net v2 checkpoint: expected a dict with 'network_weights'")
    return checkpoint


def load_nnunet_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The ``network_weights`` of an nnU-Net v2 checkpoint."""
    weights = read_nnunet_checkpoint(path)["network_weights"]
    # Checkpoints saved from torch.compile'd networks prefix every key with '_orig_mod.'.
    return {key.removeprefix("_orig_mod."): value for key, value in weights.items()}


def check_state_dict_fits(network: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise ``ModelError`` naming missing, unexpected or mis-shaped keys before ``load_state_dict``."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(
        f"{key}: expected {tuple(expected[key].shape)}, got {tuple(state_dict[key].shape)}"
        for key in set(expected) & set(state_dict)
        if tuple(expected[key].shape) != tuple(state_dict[key].shape)
    )
    if missing or unexpected or wrong:
        details = "; ".join(
            part
            for part in (
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}" if missing else "",
                f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}" if unexpected else "",
                f"wrong shapes {wrong[:3]}{'...' if len(wrong) > 3 else ''}" if wrong else "",
            )
            if part
        )
        raise ModelError(f"weights in {source} do not fit the network described by the model: {details}")
