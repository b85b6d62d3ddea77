"""Model bundles: load, save, verify and describe; nnU-Net v2 results folders load too.

``import GASACore.bundle`` does not import torch: reading and describing a model (``describe_model``,
``read_bundle``, labels, SHA-256 checks) is torch-free, so 3D Slicer's process can use it. Torch is
imported where weights are read or written and networks are built (``ModelBundle.load_fold``,
``save_bundle``, ``build_network``, an nnU-Net checkpoint's mirror axes in ``load_model``) and by the
weight helpers of ``GASACore.bundle.weights``, exported here lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from GASACore.bundle.cache import ZipLimits, bundle_cache_dir, unpack_bundle_zip
from GASACore.bundle.describe import DESCRIPTION_SCHEMA_VERSION, describe_model
from GASACore.bundle.integrity import sha256_of, verify_sha256
from GASACore.bundle.model import (
    SCHEMA_VERSION,
    ArchitectureSpec,
    FoldWeights,
    ModelBundle,
    ModelSource,
    WeightFormat,
)
from GASACore.bundle.nnunet_folder import is_nnunet_results_folder, load_nnunet_results_folder
from GASACore.bundle.store import load_model, read_bundle, save_bundle

if TYPE_CHECKING:  # torch helpers, for type checkers (at run time they are imported on first use)
    from GASACore.bundle.weights import (
        check_state_dict_fits,
        load_nnunet_checkpoint,
        load_safetensors,
        save_safetensors,
    )

__all__ = [
    "DESCRIPTION_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "ArchitectureSpec",
    "FoldWeights",
    "ModelBundle",
    "ModelSource",
    "WeightFormat",
    "ZipLimits",
    "bundle_cache_dir",
    "check_state_dict_fits",
    "describe_model",
    "is_nnunet_results_folder",
    "load_model",
    "load_nnunet_checkpoint",
    "load_nnunet_results_folder",
    "load_safetensors",
    "read_bundle",
    "save_bundle",
    "save_safetensors",
    "sha256_of",
    "unpack_bundle_zip",
    "verify_sha256",
]

#: Torch-using names, imported from GASACore.bundle.weights on first access.
_LAZY = {"check_state_dict_fits", "load_nnunet_checkpoint", "load_safetensors", "save_safetensors"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("GASACore.bundle.weights"), name)
    raise AttributeError(f"module 'GASACore.bundle' has no attribute {name!r}")
