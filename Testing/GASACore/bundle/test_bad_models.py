"""Bad model files, built at test time from the real demo bundle: each refused in one line, before allocating.

Every test copies ``Resources/models/gasa-demo-btcv`` (or the nnU-Net results folder fixture) into ``tmp_path``,
damages one thing, and asserts the exact error class and the words of its message.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from GASACore.bundle import load_model, sha256_of, unpack_bundle_zip
from GASACore.bundle.checkpoint_scan import pickle_globals
from GASACore.bundle.jsonfile import read_json_file
from GASACore.errors import ModelError, UnsafeModelError
from GASACore.io.limits import format_bytes
from GASACore.models.catalog import CatalogError, read_catalog_file

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "Resources" / "models" / "gasa-demo-btcv"
FOLD = "fold_all.safetensors"


def _demo_copy(tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target)
    return target


def _meta(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "model.json").read_text(encoding="utf-8"))


def _write_meta(bundle: Path, meta: dict[str, Any]) -> None:
    (bundle / "model.json").write_text(json.dumps(meta), encoding="utf-8")


def _split_safetensors(path: Path) -> tuple[dict[str, Any], bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _write_fold(bundle: Path, content: bytes) -> None:
    """Replace the bundle's weight file and record its new SHA-256 (so only the content is wrong)."""
    (bundle / FOLD).write_bytes(content)
    meta = _meta(bundle)
    meta["folds"][0]["sha256"] = sha256_of(bundle / FOLD)
    _write_meta(bundle, meta)


def _safetensors_bytes(header: dict[str, Any], data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _load_weights(bundle: Path) -> None:
    model = load_model(bundle)
    model.load_fold(model.folds[0])


# --- a valid bundle still loads ------------------------------------------------------------------------------


def test_the_demo_bundle_still_loads_with_its_weights(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    model = load_model(bundle)
    state = model.load_fold(model.folds[0])
    assert model.patch_size == tuple(model.metadata["architecture"]["plan"]["patch_size"])
    assert len(state) == len(model.build_network().state_dict())


def test_a_zipped_demo_bundle_still_unpacks_and_loads(tmp_path: Path) -> None:
    archive = tmp_path / "demo.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file in DEMO.iterdir():
            zf.write(file, f"gasa-demo-btcv/{file.name}")
    model = load_model(archive)
    assert model.name == "gasa-demo-btcv" and len(model.load_fold(model.folds[0])) > 0


# --- JSON files: size and nesting ----------------------------------------------------------------------------


def test_oversized_model_json_is_refused_before_reading(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    meta = _meta(bundle)
    meta["description"] = "x" * 9_000_000
    _write_meta(bundle, meta)
    with pytest.raises(ModelError, match=r"expected a model\.json of at most 8\.0 MB, but .* holds 9\.0 MB"):
        load_model(bundle)


def test_json_size_limit_follows_its_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _demo_copy(tmp_path)
    monkeypatch.setenv("GASA_MAX_MODEL_JSON_BYTES", "10KB")
    held = re.escape(format_bytes((bundle / "model.json").stat().st_size))
    with pytest.raises(ModelError, match=rf"at most 10\.0 KB, but .* holds {held}; set GASA_MAX_MODEL_JSON_BYTES"):
        load_model(bundle)
    monkeypatch.setenv("GASA_MAX_MODEL_JSON_BYTES", "lots")
    with pytest.raises(ModelError, match=r"GASA_MAX_MODEL_JSON_BYTES must be a byte size .* got 'lots'"):
        load_model(bundle)


def test_deeply_nested_model_json_is_refused_without_recursion_error(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    text = (bundle / "model.json").read_text(encoding="utf-8")
    (bundle / "model.json").write_text(
        text.replace('"training"', '"deep": ' + "[" * 100_000 + "]" * 100_000 + ', "training"')
    )
    with pytest.raises(ModelError, match=r"expected JSON nested at most 64 levels deep, found more than 64"):
        load_model(bundle)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    path = tmp_path / "plans.json"
    path.write_text(json.dumps({"note": "[" * 1000 + '\\"{' * 100}), encoding="utf-8")
    assert read_json_file(path)["note"].startswith("[[[")


def test_deeply_nested_nnunet_dataset_json_is_refused(tmp_path: Path, nnunet_results: Path) -> None:
    folder = tmp_path / nnunet_results.name
    shutil.copytree(nnunet_results, folder)
    dataset = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    (folder / "dataset.json").write_text(json.dumps(dataset)[:-1] + ', "x": ' + '{"a": ' * 5000 + "1" + "}" * 5001)
    with pytest.raises(ModelError, match=r"dataset\.json .*expected JSON nested at most 64 levels deep"):
        load_model(folder)


def test_deeply_nested_catalogue_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text('{"models": ' + "[" * 3000 + "]" * 3000 + "}", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"model catalogue .*nested at most 64 levels deep"):
        read_catalog_file(path)


# --- safetensors ---------------------------------------------------------------------------------------------


def test_safetensors_header_claiming_100_gb_in_a_1_kb_file_is_refused(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    _write_fold(bundle, struct.pack("<Q", 100 * 1000**3) + b"{}" + b" " * (1024 - 10))
    with pytest.raises(
        ModelError,
        match=r"its header claims 100,000,000,000 bytes \(100\.0 GB\) but the file holds 1,024 bytes \(1\.0 KB\)",
    ):
        _load_weights(bundle)


def test_tensor_claiming_more_bytes_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    header, data = _split_safetensors(bundle / FOLD)
    name = next(key for key in header if key != "__metadata__")
    begin = header[name]["data_offsets"][0]
    header[name]["shape"] = [100_000, 100_000, 10]
    header[name]["data_offsets"] = [begin, begin + 4 * 10**11]
    _write_fold(bundle, _safetensors_bytes(header, data))
    with pytest.raises(
        ModelError, match=rf"tensor '{name}' claims bytes .* \(400\.0 GB\) but the file holds .* of tensor"
    ):
        _load_weights(bundle)


def test_offsets_that_do_not_match_dtype_and_shape_are_refused(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    header, data = _split_safetensors(bundle / FOLD)
    name = next(key for key in header if key != "__metadata__")
    header[name]["dtype"] = "F64"
    _write_fold(bundle, _safetensors_bytes(header, data))
    with pytest.raises(ModelError, match=rf"tensor '{name}' of shape .* F64 needs .* bytes .*its data_offsets span"):
        _load_weights(bundle)


def test_unknown_dtype_is_refused(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    header, data = _split_safetensors(bundle / FOLD)
    name = next(key for key in header if key != "__metadata__")
    header[name]["dtype"] = "PYOBJ"
    _write_fold(bundle, _safetensors_bytes(header, data))
    with pytest.raises(ModelError, match=rf"tensor '{name}': expected a dtype among .*, found 'PYOBJ'"):
        _load_weights(bundle)


def test_tensor_shapes_that_do_not_fit_the_network_are_refused_by_name(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    header, data = _split_safetensors(bundle / FOLD)
    name = next(key for key, entry in header.items() if key != "__metadata__" and len(entry["shape"]) == 5)
    shape = header[name]["shape"]
    header[name]["shape"] = [shape[1], shape[0], *shape[2:]]  # same byte count, transposed channels
    _write_fold(bundle, _safetensors_bytes(header, data))
    expected = rf"do not fit the network .*wrong shapes \['{name}: expected \({shape[0]}, {shape[1]},"
    with pytest.raises(ModelError, match=expected):
        _load_weights(bundle)


def test_renamed_tensor_is_refused_by_name(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    header, data = _split_safetensors(bundle / FOLD)
    name = next(key for key in header if key != "__metadata__")
    header["stranger.weight"] = header.pop(name)
    _write_fold(bundle, _safetensors_bytes(header, data))
    with pytest.raises(ModelError, match=rf"missing \['{name}'\]; unexpected \['stranger\.weight'\]"):
        _load_weights(bundle)


# --- zipped bundles ------------------------------------------------------------------------------------------


def _zip_with(tmp_path: Path, members: dict[str, bytes], name: str = "bundle.zip") -> Path:
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, content in members.items():
            zf.writestr(member, content)
    return archive


def test_zip_bomb_bundle_is_refused_by_its_compression_ratio(tmp_path: Path) -> None:
    meta = (DEMO / "model.json").read_bytes()
    archive = _zip_with(tmp_path, {"m/model.json": meta, f"m/{FOLD}": b"\0" * (8 << 20)})
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match=rf"member 'm/{FOLD}' would expand [0-9,]+ times .*expected at most 200 times"):
        unpack_bundle_zip(archive, cache_root=cache)
    assert not cache.exists() or not any(cache.iterdir())


def test_zip_limits_follow_their_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = (DEMO / "model.json").read_bytes()
    archive = _zip_with(tmp_path, {"m/model.json": meta, f"m/{FOLD}": b"\0" * (8 << 20)})
    monkeypatch.setenv("GASA_MAX_ZIP_BYTES", "1MiB")
    with pytest.raises(
        ModelError, match=r"unpack to 8\.\d\d MiB .*more than the limit of 1\.00 MiB .*GASA_MAX_ZIP_BYTES"
    ):
        unpack_bundle_zip(archive, cache_root=tmp_path / "cache")
    monkeypatch.delenv("GASA_MAX_ZIP_BYTES")
    monkeypatch.setenv("GASA_MAX_ZIP_MEMBERS", "1")
    with pytest.raises(ModelError, match=r"holds 2 members, more than the limit of 1 .*GASA_MAX_ZIP_MEMBERS"):
        unpack_bundle_zip(archive, cache_root=tmp_path / "cache")
    monkeypatch.delenv("GASA_MAX_ZIP_MEMBERS")
    monkeypatch.setenv("GASA_MAX_ZIP_RATIO", "5000")  # the ratio check passes: unpacked, then refused as weights
    folder = unpack_bundle_zip(archive, cache_root=tmp_path / "cache")
    assert (folder / FOLD).stat().st_size == 8 << 20


@pytest.mark.parametrize("member", ["../model.json", "/tmp/model.json", "m/../../model.json", "C:/model.json"])
def test_bundle_members_that_climb_out_are_refused(tmp_path: Path, member: str) -> None:
    archive = _zip_with(tmp_path, {member: b"{}", "m/model.json": b"{}"})
    with pytest.raises(
        ModelError, match=rf"expected member paths inside a model bundle, found unsafe member path '{member}'"
    ):
        unpack_bundle_zip(archive, cache_root=tmp_path / "cache")
    assert not (tmp_path / "model.json").exists() and not (tmp_path / "cache").exists()


# --- nnU-Net checkpoints -------------------------------------------------------------------------------------


class _Opener:
    """Stands for a pickled payload that runs code when loaded."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (io.open, ("/etc/hostname",))


def _nnunet_copy(tmp_path: Path, nnunet_results: Path) -> tuple[Path, Path]:
    folder = tmp_path / nnunet_results.name
    shutil.copytree(nnunet_results, folder)
    return folder, folder / "fold_0" / "checkpoint_final.pth"


def test_the_nnunet_folder_still_loads(tmp_path: Path, nnunet_results: Path) -> None:
    folder, _ = _nnunet_copy(tmp_path, nnunet_results)
    model = load_model(folder)
    assert model.mirror_axes is not None and len(model.load_fold(model.folds[0])) > 0


@pytest.mark.parametrize("protocol", [2, 4])
def test_checkpoint_with_python_objects_is_refused_in_our_words(
    tmp_path: Path, nnunet_results: Path, protocol: int
) -> None:
    folder, checkpoint = _nnunet_copy(tmp_path, nnunet_results)
    content = torch.load(checkpoint, map_location="cpu", weights_only=False)
    content["trainer_name"] = _Opener()
    torch.save(content, checkpoint, pickle_protocol=protocol)
    with pytest.raises(UnsafeModelError) as caught:
        load_model(folder)
    message = str(caught.value)
    assert message == f"{checkpoint} contains Python objects (io.open) that GASASegmenter never runs"
    assert "weights_only" not in message and "safe_globals" not in message


def test_pickle_names_are_found_without_running_the_pickle() -> None:
    import pickle

    data = pickle.dumps({"a": _Opener(), "b": os.system}, protocol=4)
    assert pickle_globals(data) == ["io.open", "posix.system" if os.name == "posix" else "nt.system"]


def test_legacy_checkpoint_format_is_refused(tmp_path: Path, nnunet_results: Path) -> None:
    folder, checkpoint = _nnunet_copy(tmp_path, nnunet_results)
    content = torch.load(checkpoint, map_location="cpu", weights_only=False)
    torch.save(content, checkpoint, _use_new_zipfile_serialization=False)
    with pytest.raises(
        ModelError, match=r"expected a torch zip checkpoint \(torch\.save since torch 1\.6.*found another"
    ):
        load_model(folder)


def test_checkpoint_zip_bomb_is_refused_before_torch_reads_it(tmp_path: Path, nnunet_results: Path) -> None:
    folder, checkpoint = _nnunet_copy(tmp_path, nnunet_results)
    with zipfile.ZipFile(checkpoint) as original:
        members = {info.filename: original.read(info) for info in original.infolist()}
    prefix = next(name for name in members if name.endswith("/data.pkl")).rsplit("/", 1)[0]
    members[f"{prefix}/data/9999"] = b"\0" * (8 << 20)
    checkpoint.unlink()
    _zip_with(checkpoint.parent, members, checkpoint.name)
    with pytest.raises(
        ModelError, match=r"would expand [0-9,]+ times .*expected at most 200 times for an nnU-Net checkpoint"
    ):
        load_model(folder)


@pytest.mark.parametrize("member", ["archive/../../evil", "/archive/data.pkl"])
def test_checkpoint_members_that_climb_out_are_refused(tmp_path: Path, nnunet_results: Path, member: str) -> None:
    folder, checkpoint = _nnunet_copy(tmp_path, nnunet_results)
    with zipfile.ZipFile(checkpoint, "a") as zf:
        zf.writestr(member, b"x")
    with pytest.raises(ModelError, match=rf"inside an nnU-Net checkpoint, found unsafe member path '{member}'"):
        load_model(folder)


def test_plans_without_a_known_configuration_name_what_they_hold(tmp_path: Path, nnunet_results: Path) -> None:
    folder, _ = _nnunet_copy(tmp_path, nnunet_results)
    plans = json.loads((folder / "plans.json").read_text())
    plans["configurations"] = {"3d_weird": plans["configurations"].pop("3d_fullres")}
    (folder / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(
        ModelError,
        match=r"expected the configuration '3d_fullres' \(the folder name's\), 3d_fullres or 3d_lowres in "
        r".*plans\.json, found \['3d_weird'\]",
    ):
        load_model(folder)


def test_a_requested_fold_without_checkpoint_is_refused_naming_the_folds(tmp_path: Path, nnunet_results: Path) -> None:
    folder, _ = _nnunet_copy(tmp_path, nnunet_results)
    (folder / "fold_1").mkdir()
    with pytest.raises(ModelError, match=r"folds \['fold_1'\] are not in model .*; it has \['fold_0'\]"):
        load_model(folder, folds=["1"])


@pytest.mark.parametrize("extra", [2, -1], ids=["more labels than channels", "fewer labels than channels"])
def test_dataset_labels_that_do_not_match_the_checkpoint_are_refused(
    tmp_path: Path, nnunet_results: Path, extra: int
) -> None:
    folder, _ = _nnunet_copy(tmp_path, nnunet_results)
    dataset = json.loads((folder / "dataset.json").read_text())
    if extra > 0:
        dataset["labels"].update({"extra_1": 7, "extra_2": 8})
    else:
        dataset["labels"].pop(list(dataset["labels"])[-1])
    (folder / "dataset.json").write_text(json.dumps(dataset))
    model = load_model(folder)
    with pytest.raises(ModelError, match=r"weights in .*checkpoint_final\.pth do not fit the"):
        model.load_fold(model.folds[0])


def test_zero_byte_weights_are_refused_in_one_line(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    _write_fold(bundle, b"")
    with pytest.raises(ModelError, match=r"not a valid safetensors file: expected at least 8 bytes .*found 0"):
        _load_weights(bundle)


def test_a_label_value_given_twice_is_refused(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    meta = _meta(bundle)
    meta["labels"][2]["value"] = meta["labels"][1]["value"]
    _write_meta(bundle, meta)
    with pytest.raises(ModelError, match=r"label values must be unique, got \[1, 2, 2, 4"):
        load_model(bundle)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"color": [float("nan"), 0, 0]},
            r"a value >= 1 and an RGB colour of 3 whole numbers 0-255, got .*'color': \[nan, 0, 0\]",
        ),
        ({"color": [1, 2]}, r"a value >= 1 and an RGB colour of 3 whole numbers 0-255, got .*'color': \[1, 2\]"),
        ({"name": "spl\neen"}, r"a non-empty name without line breaks .*, got 'spl\\neen' \(value 1\)"),
        ({"name": " "}, r"a non-empty name .*, got ' ' \(value 1\)"),
    ],
    ids=["NaN colour", "two-number colour", "line break in name", "blank name"],
)
def test_labels_no_output_could_hold_are_refused(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    """A NaN colour gave Python's "cannot convert float NaN to integer"; a line break would break a .seg.nrrd header."""
    bundle = _demo_copy(tmp_path)
    meta = _meta(bundle)
    meta["labels"][0].update(change)
    _write_meta(bundle, meta)
    with pytest.raises(ModelError, match=r"model.json in .* is malformed: ValueError: a label needs " + expected):
        load_model(bundle)


def test_a_fold_listed_twice_is_refused(tmp_path: Path) -> None:
    bundle = _demo_copy(tmp_path)
    meta = _meta(bundle)
    meta["folds"].append(dict(meta["folds"][0]))
    _write_meta(bundle, meta)
    with pytest.raises(ModelError, match=r"must list each fold once, got folds \['fold_all', 'fold_all'\]"):
        load_model(bundle)


# --- model.json numeric fields -------------------------------------------------------------------------------


def _set(meta: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node: Any = meta
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("fields", "value", "expected"),
    [
        (
            ["architecture.plan.patch_size", "preprocessing.patch_size"],
            [2048, 40, 48],
            r"architecture\.plan\.patch_size must be integers in 1\.\.1024, got \[2048, 40, 48\]",
        ),
        (
            ["architecture.plan.patch_size", "preprocessing.patch_size"],
            [1024, 1024, 1024],
            r"architecture\.plan\.patch_size must be at most 16,777,216 voxels \(256\^3\), not 1,073,741,824, "
            r"got \[1024, 1024, 1024\]",
        ),
        (["preprocessing.spacing"], [4.0, 4.0, 1000.0], r"preprocessing\.spacing must be finite numbers in \(0, 100\)"),
        (
            ["preprocessing.spacing"],
            [4.0, float("inf"), 4.0],
            r"preprocessing\.spacing must be finite .*got \[4\.0, inf",
        ),
        (["architecture.num_classes"], 5000, r"architecture\.num_classes must be integers in 1\.\.1000, got 5000"),
        (
            ["architecture.plan.kernel_sizes.0"],
            [99, 3, 3],
            r"architecture\.plan\.kernel_sizes must be integers in 1\.\.15, got \[\[99, 3, 3\], \[3, 3, 3\]",
        ),
        (
            ["architecture.plan.features_per_stage"],
            [8, 16, 32, 64, 1_000_000],
            r"architecture\.plan\.features_per_stage must be integers in 1\.\.4096, got \[8, 16, 32, 64, 1000000\]",
        ),
        (
            ["preprocessing.intensity_properties.0.mean"],
            float("nan"),
            r"preprocessing\.intensity_properties\[0\]\.mean must be finite numbers in \[-1e\+07, 1e\+07\), got nan",
        ),
        (
            ["preprocessing.intensity_properties.0.std"],
            -3.0,
            r"preprocessing\.intensity_properties\[0\]\.std must be .*got -3\.0",
        ),
        (
            ["preprocessing.anisotropy_threshold"],
            float("inf"),
            r"preprocessing\.anisotropy_threshold must be finite .*got inf",
        ),
        (["inference.mirror_axes"], [0, 1, 7], r"inference\.mirror_axes must be integers in 0\.\.2, got \[0, 1, 7\]"),
    ],
)
def test_out_of_range_model_fields_are_refused_naming_field_value_and_range(
    tmp_path: Path, fields: list[str], value: Any, expected: str
) -> None:
    bundle = _demo_copy(tmp_path)
    meta = _meta(bundle)
    for name in fields:
        _set(meta, name, value)
    _write_meta(bundle, meta)
    with pytest.raises(ModelError, match=r"^model .*model\.json: " + expected):
        load_model(bundle)


# --- through the command line --------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["patch-size bomb", "deep nesting", "safetensors header bomb"])
def test_gasa_segment_refuses_a_bad_model_in_one_line(tmp_path: Path, shared_data: Path, damage: str) -> None:
    bundle = _demo_copy(tmp_path)
    meta = _meta(bundle)
    if damage == "patch-size bomb":
        meta["architecture"]["plan"]["patch_size"] = meta["preprocessing"]["patch_size"] = [1024, 1024, 1024]
        _write_meta(bundle, meta)
    elif damage == "deep nesting":
        meta["training"] = "@"
        (bundle / "model.json").write_text(json.dumps(meta).replace('"@"', "[" * 50_000 + "]" * 50_000))
    else:
        _write_fold(bundle, struct.pack("<Q", 100 * 1000**3) + b"{}" + b" " * 1014)
    out = tmp_path / "seg.nii.gz"
    ct = shared_data / "totalsegmentator" / "example_ct_sm.nii.gz"
    result = subprocess.run(
        [sys.executable, "-m", "GASACore.cli", str(ct), "-o", str(out), "-m", str(bundle)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("gasa-segment: error: "), result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    assert {"patch-size bomb": "voxels", "deep nesting": "64 levels", "safetensors header bomb": "100.0 GB"}[
        damage
    ] in lines[0]
