"""Reading and writing network weights without running code from them.

Bundles store one safetensors file per fold: its header is checked against the file's size and the network's
shapes before a tensor is loaded (``GASACore.bundle.safetensors_header``). nnU-Net v2 checkpoints
(``checkpoint_final.pth``) are checked as zips (member count, sizes, ratios, names) and their pickle's object
names are listed without running it (``GASACore.bundle.checkpoint_scan``); one naming anything but tensors and
plain values is refused in our own words. Only then are they read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from GASACore.bundle.checkpoint_scan import scan_checkpoint
from GASACore.bundle.safetensors_header import read_safetensors_header
from GASACore.errors import ModelError

__all__ = [
    "check_shapes_fit",
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


def load_safetensors(path: Path, network: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Read a safetensors weight file onto the CPU, its header checked first.

    Args:
        path: the file.
        network: when given, the header's tensor names and shapes must fit it (checked before loading).

    Raises:
        ModelError: a header whose claims the file cannot hold (``read_safetensors_header``), tensors that do
            not fit ``network`` (named), or data the safetensors library cannot read.
    """
    header = read_safetensors_header(path)
    if network is not None:
        check_shapes_fit(network, {name: info.shape for name, info in header.items()}, str(path))
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
    """An nnU-Net v2 checkpoint dict: scanned first (``scan_checkpoint``), then loaded with ``weights_only=True``.

    Raises:
        UnsafeModelError: the checkpoint's pickle names Python objects beyond tensors and plain values.
        ModelError: not a zip checkpoint, over the zip limits, or unreadable; never with torch's advice on
            loading it unsafely.
    """
    scan_checkpoint(path)
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises pickle / zip / runtime errors for bad files
        raise ModelError(f"cannot load nnU-Net checkpoint {path}: {_own_words(err)}") from err
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise ModelError(f"{path} is not an nnU-Net v2 checkpoint: expected a dict with 'network_weights'")
    return checkpoint


def load_nnunet_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The ``network_weights`` of an nnU-Net v2 checkpoint."""
    weights = read_nnunet_checkpoint(path)["network_weights"]
    # Checkpoints saved from torch.compile'd networks prefix every key with '_orig_mod.'.
    return {key.removeprefix("_orig_mod."): value for key, value in weights.items()}


def _own_words(err: Exception) -> str:
    """What went wrong, in one line; a library's advice to load the file unsafely is never passed on."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, pickle.UnpicklingError) or "weights_only" in str(err) or "safe_globals" in str(err):
        return "expected tensors and plain values, found data that cannot be read as them"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def check_state_dict_fits(network: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise ``ModelError`` naming missing, unexpected or mis-shaped keys before ``load_state_dict``."""
    check_shapes_fit(network, {key: tuple(value.shape) for key, value in state_dict.items()}, source)


def check_shapes_fit(network: torch.nn.Module, shapes: Mapping[str, Sequence[int]], source: str) -> None:
    """Raise ``ModelError`` naming missing, unexpected or mis-shaped tensors (by name) of ``shapes``."""
    expected = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    given = {key: tuple(int(v) for v in shape) for key, shape in shapes.items()}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = sorted(
        f"{key}: expected {expected[key]}, got {given[key]}"
        for key in set(expected) & set(given)
        if expected[key] != given[key]
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
