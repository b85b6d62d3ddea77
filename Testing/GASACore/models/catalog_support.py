"""Helpers of the catalogue tests: archives in TotalSegmentator's layout, catalogue entries and files."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[3]
#: TotalSegmentator's trainer for its 1.5 mm parts: the network comes from the plans, mirroring is off.
TRAINER = "nnUNetTrainerNoMirroring"
#: The model folder inside the archive, as TotalSegmentator lays its release zips out.
MODEL_FOLDER = f"Dataset990_GASATest/{TRAINER}__nnUNetPlans__3d_fullres"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy")


def as_published(folder: Path) -> Path:
    """Rename ``nnUNetTrainer__...`` to TotalSegmentator's trainer and record it in the checkpoint as it does."""
    target = folder.with_name(f"{TRAINER}__nnUNetPlans__3d_fullres")
    folder.rename(target)
    checkpoint_path = target / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(checkpoint_path, weights_only=False)
    checkpoint["trainer_name"] = TRAINER
    checkpoint["inference_allowed_mirroring_axes"] = None  # what nnUNetTrainerNoMirroring saves
    torch.save(checkpoint, checkpoint_path)
    (target / "dataset_fingerprint.json").write_text(json.dumps({"spacings": [[3.0, 3.0, 3.0]]}), encoding="utf-8")
    return target


def zip_folder(folder: Path, root: Path) -> bytes:
    """``folder`` zipped with member names relative to ``root`` (so ``Dataset.../Trainer__.../...``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remote_entry(model_id: str, url: str | list[str], data: bytes, *, pinned: bool = True, **extra: Any) -> dict:
    """A remote catalogue entry for ``data`` served at ``url``."""
    return {
        "id": model_id,
        "version": "1.0.0",
        "title": f"test model {model_id}",
        "description": "a small nnU-Net v2 model trained on the sample CT",
        "modality": "CT",
        "format": "nnunet",
        "url": url,
        "size": len(data),
        "sha256": sha256(data) if pinned else None,
        "license": {"name": "Apache-2.0", "commercial_use": True},
        "citation": "GASASegmenter tests",
        **extra,
    }


def write_catalog(path: Path, *entries: dict) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "models": list(entries)}, indent=2), encoding="utf-8")
    return path


def serve_site_catalog(
    folder: Path, server: Any, data: bytes, *, url: str | list[str] | None = None, **extra: Any
) -> Path:
    """Serve ``data`` as ``/m.zip`` from the loopback ``server`` and write ``folder/site.json`` with one pinned
    entry ``site-model`` for it (``url`` overrides where the entry points; ``extra`` its other fields)."""
    server.files["/m.zip"] = data
    return write_catalog(folder / "site.json", remote_entry("site-model", url or server.url("/m.zip"), data, **extra))
