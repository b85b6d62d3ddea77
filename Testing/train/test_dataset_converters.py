"""Converters to nnU-Net v2's raw layout on miniature BTCV / AMOS22 / KiTS23 folders and on the real CT."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from train.datasets import (
    SPLITS_FILE_NAME,
    TOTALSEG_TO_BTCV,
    ConversionError,
    add_convert_parser,
    convert_amos,
    convert_btcv,
    convert_kits23,
    convert_pairs,
)

SPACING = (0.8, 0.8, 2.5)
ORIGIN = (-10.0, 20.0, 5.0)


def _write(path: Path, array: np.ndarray, spacing=SPACING, origin=ORIGIN) -> Path:
    """Write a (z, y, x) array as an image with the given geometry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


def _case(image: Path, label: Path, values: tuple[int, ...] = (1, 2), seed: int = 0, **geometry) -> None:
    rng = np.random.default_rng(seed)
    _write(image, rng.integers(-1000, 1000, (6, 8, 7)).astype(np.int16))
    labels = np.zeros((6, 8, 7), dtype=np.int16)  # int16 on purpose: the output must be uint8
    for i, value in enumerate(values):
        labels[i + 1, 2:5, 1 + i] = value
    _write(label, labels, **geometry)


def _dataset_json(folder: Path) -> dict:
    return json.loads((folder / "dataset.json").read_text())


def _label_array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_btcv_rawdata_with_monai_split_file(tmp_path: Path) -> None:
    source = tmp_path / "RawData"
    for number in ("0001", "0002", "0003"):
        _case(source / "Training/img" / f"img{number}.nii.gz", source / "Training/label" / f"label{number}.nii.gz")
    split = {
        "training": [
            {"image": f"Training/img/img{n}.nii.gz", "label": f"Training/label/label{n}.nii.gz"}
            for n in ("0001", "0003")
        ],
        "validation": [{"image": "Training/img/img0002.nii.gz", "label": "Training/label/label0002.nii.gz"}],
    }
    (source / "dataset_0.json").write_text(json.dumps(split))
    out = convert_btcv(source, tmp_path / "raw")

    assert out == tmp_path / "raw" / "Dataset017_BTCV"
    meta = _dataset_json(out)
    assert meta["channel_names"] == {"0": "CT"} and meta["file_ending"] == ".nii.gz" and meta["numTraining"] == 3
    assert meta["labels"]["background"] == 0 and meta["labels"]["spleen"] == 1 and len(meta["labels"]) == 14
    assert json.loads((out / SPLITS_FILE_NAME).read_text()) == [
        {"train": ["btcv_0001", "btcv_0003"], "val": ["btcv_0002"]}
    ]
    image = out / "imagesTr" / "btcv_0001_0000.nii.gz"
    assert image.is_symlink() and image.resolve() == (source / "Training/img/img0001.nii.gz").resolve()
    label = sitk.ReadImage(str(out / "labelsTr" / "btcv_0001.nii.gz"))
    assert label.GetPixelID() == sitk.sitkUInt8
    assert label.GetSpacing() == pytest.approx(SPACING) and label.GetOrigin() == pytest.approx(ORIGIN)
    assert sorted(np.unique(sitk.GetArrayFromImage(label))) == [0, 1, 2]
    assert [p.name for p in tmp_path.joinpath("raw").iterdir()] == ["Dataset017_BTCV"]  # no temporary left


def test_btcv_flat_folders_without_split_copying_images(tmp_path: Path) -> None:
    source = tmp_path / "btcv"
    for number in ("0005", "0040"):
        _case(source / "img" / f"img{number}.nii.gz", source / "label" / f"label{number}.nii.gz", values=(6, 13))
    out = convert_btcv(source, tmp_path / "raw", dataset_id=31, name="BTCVflat", link=False)
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["btcv_0005.nii.gz", "btcv_0040.nii.gz"]
    assert not (out / "imagesTr" / "btcv_0005_0000.nii.gz").is_symlink()
    assert not (out / SPLITS_FILE_NAME).exists()
    with pytest.raises(FileExistsError, match="must not exist"):
        convert_btcv(source, tmp_path / "raw", dataset_id=31, name="BTCVflat")
    assert convert_btcv(source, tmp_path / "raw", dataset_id=31, name="BTCVflat", overwrite=True) == out


def test_amos_ct_by_default_and_mri_on_request(tmp_path: Path) -> None:
    source = tmp_path / "amos22"
    for folder, case in (("Tr", "amos_0001"), ("Tr", "amos_0500"), ("Tr", "amos_0507"), ("Va", "amos_0400")):
        _case(source / f"images{folder}" / f"{case}.nii.gz", source / f"labels{folder}" / f"{case}.nii.gz", (14, 15))
    (source / "dataset.json").write_text("{}")

    ct = convert_amos(source, tmp_path / "raw")
    assert ct.name == "Dataset218_AMOS22_CT"
    assert sorted(p.name for p in (ct / "labelsTr").iterdir()) == [
        "amos_0001.nii.gz",
        "amos_0400.nii.gz",
        "amos_0500.nii.gz",
    ]
    meta = _dataset_json(ct)
    assert meta["numTraining"] == 3 and len(meta["labels"]) == 16 and meta["labels"]["prostate or uterus"] == 15

    mri = convert_amos(source, tmp_path / "raw", modality="mri", dataset_id=219)
    assert [p.name for p in (mri / "imagesTr").iterdir()] == ["amos_0507_0000.nii.gz"]
    assert _dataset_json(mri)["channel_names"] == {"0": "MRI"}
    with pytest.raises(ValueError, match="modality must be 'ct' or 'mri', got 'pet'"):
        convert_amos(source, tmp_path / "raw", modality="pet")  # type: ignore[arg-type]


def test_kits23_region_labels_on_crops_of_the_real_ct(tmp_path: Path, example_ct: Path) -> None:
    ct = sitk.ReadImage(str(example_ct))[30:60, 30:60, 40:70]
    source = tmp_path / "kits23" / "dataset"
    for index in range(3):
        case = source / f"case_{index:05d}"
        case.mkdir(parents=True)
        sitk.WriteImage(ct, str(case / "imaging.nii.gz"))
        labels = np.zeros(sitk.GetArrayViewFromImage(ct).shape, dtype=np.uint8)
        labels[5:20, 5:20, 5:20] = 1
        labels[8:12, 8:12, 8:12] = 2
        labels[14:17, 14:17, 14:17] = 3 if index else 0
        seg = sitk.GetImageFromArray(labels)
        seg.CopyInformation(ct)
        sitk.WriteImage(seg, str(case / "segmentation.nii.gz"))

    out = convert_kits23(source.parent, tmp_path / "raw")  # the repository root holding dataset/
    meta = _dataset_json(out)
    assert out.name == "Dataset220_KiTS2023" and meta["numTraining"] == 3
    assert meta["labels"] == {"background": 0, "kidney": [1, 2, 3], "masses": [2, 3], "tumor": 2}
    assert meta["regions_class_order"] == [1, 3, 2]  # as nnU-Net's Dataset220_KiTS2023 conversion
    assert "overwrite_image_reader_writer" not in meta
    assert sorted(np.unique(_label_array(out / "labelsTr" / "case_00001.nii.gz"))) == [0, 1, 2, 3]


def test_every_bad_case_is_reported_at_once_and_nothing_is_written(tmp_path: Path) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    _case(images / "good.nii.gz", labels / "good.nii.gz")
    _case(images / "shifted.nii.gz", labels / "shifted.nii.gz", origin=(-10.0, 20.0, 9.0))
    _case(images / "coarse.nrrd", labels / "coarse.nii.gz", spacing=(0.8, 0.8, 5.0))
    _case(images / "alone_0000.nii.gz", tmp_path / "elsewhere" / "alone.nii.gz")
    _case(images / "extra.nii.gz", labels / "extra.nii.gz", values=(1, 7))
    _write(labels / "orphan.nii.gz", np.zeros((6, 8, 7), dtype=np.uint8))
    _write(images / "flat.nii.gz", np.zeros((8, 7), dtype=np.int16), spacing=(0.8, 0.8), origin=(0.0, 0.0))
    _write(labels / "flat.nii.gz", np.zeros((8, 7), dtype=np.uint8), spacing=(0.8, 0.8), origin=(0.0, 0.0))

    with pytest.raises(ConversionError) as caught:
        convert_pairs(images, labels, tmp_path / "raw", labels={"spleen": 1, "kidney": 2})
    reasons = {issue.case_id: issue.reason for issue in caught.value.issues}
    assert set(reasons) == {"shifted", "coarse", "alone", "extra", "orphan", "flat"}
    assert reasons["flat"] == "image must be 3D with one channel, got size (7, 8) with 1 channel(s)"
    assert "label origin must equal image origin" in reasons["shifted"]
    assert "label spacing must equal image spacing" in reasons["coarse"]
    assert reasons["alone"].startswith("label file missing")
    assert reasons["extra"] == "label values must be in [0, 1, 2], got [7]"
    assert reasons["orphan"].startswith("image file missing")
    assert "6 bad case(s)" in str(caught.value) and "nothing was written" in str(caught.value)
    assert list((tmp_path / "raw").iterdir()) == []  # neither the target nor a temporary folder


def test_pairs_with_totalsegmentator_to_btcv_remap_on_the_real_ct(tmp_path: Path, shared_data: Path) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    os.symlink(shared_data / "totalsegmentator" / "example_ct.nii.gz", images / "example.nii.gz")
    source_seg = shared_data / "totalsegmentator" / "example_seg_fast_force_split.nii.gz"
    os.symlink(source_seg, labels / "example.nii.gz")
    btcv = {"background": 0, **{f"organ{v}": v for v in range(1, 14)}}

    out = convert_pairs(
        images, labels, tmp_path / "raw", labels=btcv, remap=TOTALSEG_TO_BTCV, dataset_id=1, name="Demo"
    )
    converted = _label_array(out / "labelsTr" / "example.nii.gz")
    original = _label_array(source_seg)
    assert converted.dtype == np.uint8 and converted.shape == original.shape
    for source_value, target_value in TOTALSEG_TO_BTCV.items():
        assert (converted == target_value).sum() == (original == source_value).sum()
    assert set(np.unique(converted)) == set(range(14)) - {5}  # no esophagus in this field of view
    assert (out / "imagesTr" / "example_0000.nii.gz").is_symlink()

    with pytest.raises(ConversionError, match="unmapped values"):
        convert_pairs(images, labels, tmp_path / "strict", labels=btcv, remap=TOTALSEG_TO_BTCV, drop_unmapped=False)
    with pytest.raises(ValueError, match="remap targets must be declared label values"):
        convert_pairs(images, labels, tmp_path / "bad", labels={"spleen": 1}, remap={1: 1, 2: 2})


def test_convert_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    _case(images / "a.mha", labels / "a.nrrd", values=(2, 3))
    parser = argparse.ArgumentParser(prog="gasa-train")
    add_convert_parser(parser.add_subparsers(dest="command"))
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    args = parser.parse_args(["convert", "pairs", str(images), str(labels), "--labels", "kits23", "-d", "7", "--copy"])
    assert args.func(args) == 0
    out = tmp_path / "raw" / "Dataset007_Custom"
    assert _dataset_json(out)["labels"] == {"background": 0, "kidney": 1, "kidney tumor": 2, "kidney cyst": 3}
    assert (out / "imagesTr" / "a_0000.nii.gz").is_file()  # .mha re-written as .nii.gz
    with pytest.raises(ValueError, match="must not exist"):
        args.func(args)
    for kind in ("btcv", "amos", "kits23", "pairs"):
        with pytest.raises(SystemExit):
            parser.parse_args(["convert", kind, "--help"])


def test_pairs_use_gasacore_suffixes_nhdr_images_and_seg_nrrd_labels(tmp_path: Path) -> None:
    images, labels = tmp_path / "images", tmp_path / "labels"
    _case(images / "case1.nhdr", labels / "case1.seg.nrrd")
    out = convert_pairs(images, labels, tmp_path / "raw", labels={"spleen": 1, "kidney": 2}, dataset_id=9)
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == ["case1_0000.nii.gz"]
    assert sorted(np.unique(_label_array(out / "labelsTr" / "case1.nii.gz"))) == [0, 1, 2]
