"""The cohort's parts: the shard rule, torchrun's environment, the resume rule, leftover temporaries, the summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from GASACore.cohort import (
    CaseRecord,
    CaseStatus,
    RankGroup,
    RankInfo,
    existing_outputs_error,
    output_complete,
    rank_request,
    select_rank_device,
    shard,
    write_summary,
)
from GASACore.errors import GASAError
from GASACore.io import atomic_output, stale_temporaries
from GASACore.options import Device


@pytest.mark.parametrize("world", [1, 2, 3, 7])
@pytest.mark.parametrize("count", [0, 1, 5, 16])
def test_shards_cover_every_case_once_and_differ_by_at_most_one(world: int, count: int) -> None:
    cases = [f"case{i:02d}" for i in range(count)]
    shards = [shard(cases, rank, world) for rank in range(world)]
    assert sorted(c for part in shards for c in part) == cases
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shards == [shard(cases, rank, world) for rank in range(world)], "the same split every time"


def test_shard_is_round_robin() -> None:
    assert shard("abcde", 0, 2) == ["a", "c", "e"] and shard("abcde", 1, 2) == ["b", "d"]
    assert shard(range(10), 2, 4) == [2, 6]


@pytest.mark.parametrize(("rank", "world"), [(2, 2), (-1, 2), (0, 0), (0, 1.5)])
def test_shard_refuses_a_rank_outside_the_world(rank: int, world: int) -> None:
    with pytest.raises(ValueError, match="must be an integer"):
        shard(["a"], rank, world)


def test_rank_info_from_torchrun_environment() -> None:
    info = RankInfo.from_environ({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert info == RankInfo(5, 8, 1) and info.distributed and info.label == "rank 5/8"
    single = RankInfo.from_environ({})
    assert single == RankInfo(0, 1, 0) and not single.distributed and single.label == ""
    assert RankInfo.from_environ({"RANK": "1", "WORLD_SIZE": "2"}).local_rank == 1, "LOCAL_RANK defaults to RANK"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RANK": "one", "WORLD_SIZE": "2"}, "RANK must be an integer \\(as torchrun sets it\\), got 'one'"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "rank must be in \\[0, world_size\\), got rank 2 of world size 2"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "do not fit together"),
        ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "-1"}, "local_rank must be an integer >= 0, got -1"),
    ],
)
def test_rank_info_refuses_a_bad_environment(environ: dict[str, str], message: str) -> None:
    with pytest.raises(GASAError, match=message):
        RankInfo.from_environ(environ)


def test_each_rank_takes_its_local_gpu() -> None:
    info = RankInfo(rank=3, world_size=4, local_rank=1)
    assert str(rank_request(Device.parse("cuda"), info)) == "cuda:1"
    assert str(rank_request(Device.parse("cuda:0"), info)) == "cuda:0", "an explicit ordinal is the user's choice"
    assert str(rank_request(Device.parse("auto"), info)) == "auto"
    assert str(rank_request(Device.parse("cpu"), info)) == "cpu"
    assert str(rank_request(Device.parse("cuda"), RankInfo())) == "cuda", "a single process keeps cuda as is"


def test_cpu_ranks_and_auto_without_a_gpu_resolve_to_the_cpu() -> None:
    info = RankInfo(rank=1, world_size=2, local_rank=1)
    assert select_rank_device("cpu", info).device.type == "cpu"
    resolved = select_rank_device("auto", info)
    assert resolved.device.type == "cpu" and resolved.reason.startswith("rank 1/2: CUDA not usable (")


def test_a_single_process_needs_no_process_group() -> None:
    with RankGroup(RankInfo()) as group:
        assert group.all_gather({"rows": 3}) == [{"rows": 3}]


def test_a_multi_process_run_needs_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(GASAError, match="MASTER_ADDR is not set; start a multi-process run with torchrun"):
        RankGroup(RankInfo(0, 2, 0)).__enter__()


def _label_map(path: Path) -> Path:
    image = sitk.GetImageFromArray(np.zeros((4, 5, 6), dtype=np.uint8))
    with atomic_output(path, overwrite=False) as tmp:
        sitk.WriteImage(image, str(tmp))
    return path


def test_resume_counts_only_complete_outputs(tmp_path: Path) -> None:
    complete = _label_map(tmp_path / "a.nii.gz")
    assert output_complete(complete)
    assert not output_complete(tmp_path / "missing.nii.gz")
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    assert not output_complete(tmp_path / "empty.nii.gz")
    (tmp_path / "foreign.nii.gz").write_bytes(b"not an image at all" * 30)
    assert not output_complete(tmp_path / "foreign.nii.gz")
    half = complete.read_bytes()[:20]
    (tmp_path / ".partial-0123456789ab-b.nii.gz").write_bytes(half)
    assert not output_complete(tmp_path / "b.nii.gz"), "a leftover temporary is not an output"


def test_stale_temporaries_are_those_of_the_output_only(tmp_path: Path) -> None:
    mine = tmp_path / ".partial-0123456789ab-ct.nii.gz"
    other = tmp_path / ".partial-0123456789ab-ct2.nii.gz"
    not_ours = tmp_path / ".partial-xyz-ct.nii.gz"
    for path in (mine, other, not_ours):
        path.write_bytes(b"half")
    assert stale_temporaries(tmp_path / "ct.nii.gz") == [mine]
    assert stale_temporaries(tmp_path / "missing" / "ct.nii.gz") == []


def test_summary_is_written_in_input_order_as_csv_and_json(tmp_path: Path) -> None:
    records = [
        CaseRecord("b", CaseStatus.FAILED, 0.5, "cpu", 1, str(tmp_path / "b.nii.gz"), "expected an image", 1),
        CaseRecord("c", CaseStatus.SKIPPED, 0.0, "cuda:0", 0, str(tmp_path / "c.nii.gz"), "", 2),
        CaseRecord("a", CaseStatus.SEGMENTED, 12.25, "cuda:0", 0, str(tmp_path / "a.nii.gz"), "", 0),
    ]
    json_path, csv_path = write_summary(tmp_path, records, {"input": "in", "world_size": 2})
    document = json.loads(json_path.read_text())
    assert document["schema_version"] == 1 and document["world_size"] == 2 and document["input"] == "in"
    assert document["counts"] == {"segmented": 1, "skipped": 1, "failed": 1}
    assert [c["case"] for c in document["cases"]] == ["a", "b", "c"]
    assert document["cases"][0] == {
        "case": "a", "status": "segmented", "seconds": 12.25, "device": "cuda:0", "rank": 0,
        "output": str(tmp_path / "a.nii.gz"), "error": "",
    }  # fmt: skip
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["case"], r["status"], r["rank"], r["error"]) for r in rows] == [
        ("a", "segmented", "0", ""), ("b", "failed", "1", "expected an image"), ("c", "skipped", "0", ""),
    ]  # fmt: skip
    assert list(rows[0]) == ["case", "status", "seconds", "device", "rank", "output", "error"]
    write_summary(tmp_path, records[:1], {})
    assert len(json.loads(json_path.read_text())["cases"]) == 1, "the last run's summary is replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv", "summary.json"]


def test_existing_outputs_error_names_them(tmp_path: Path) -> None:
    outputs = [tmp_path / f"{i}.nii.gz" for i in range(8)]
    assert existing_outputs_error(outputs, overwrite=False) is None
    for path in outputs[:7]:
        path.write_bytes(b"x")
    message = existing_outputs_error(outputs, overwrite=False)
    assert message is not None and message.startswith("7 outputs exist (") and "and 2 more" in message
    assert "--resume to skip their cases" in message
    assert existing_outputs_error(outputs, overwrite=True) is None
