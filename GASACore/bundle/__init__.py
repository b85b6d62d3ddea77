"""Model bundles: load, save and verify; nnU-Net v2 results folders load too."""

from __future__ import annotations

from GASACore.bundle.integrity import extract_bundle_zip, sha256_of, verify_sha256
from GASACore.bundle.model import SCHEMA_VERSION, ArchitectureSpec, FoldWeights, ModelBundle
from GASACore.bundle.nnunet_folder import is_nnunet_results_folder, load_nnunet_results_folder
from GASACore.bundle.store import load_model, read_bundle, save_bundle

__all__ = [
    "SCHEMA_VERSION",
    "ArchitectureSpec",
    "FoldWeights",
    "ModelBundle",
    "extract_bundle_zip",
    "is_nnunet_results_folder",
    "load_model",
    "load_nnunet_results_folder",
    "read_bundle",
    "save_bundle",
    "sha256_of",
    "verify_sha256",
]
