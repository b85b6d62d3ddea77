"""The tables as data, the run plan with its registry checks, the state file and the ``reproduce`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from GASACore.network.registry import NETWORKS
from train.cli import build_parser
from train.reproduce import TABLES, Method, ReproductionState, RunKey, TableSpec, build_run_plan, table_spec
from train.reproduce.execute import RunContext, worker_command
from train.reproduce.table_writer import format_difference
from train.reproduce.worker import worker_arguments

TODAY = ("nnunet", "gasa-unet", "gasa-l", "nnmamba")  # a subset of the trainable networks

#: The paper's bracketed differences, (Dice, NSD) per data set, as printed in its Tables 1 and 2.
PAPER_BRACKETS = {
    "nnmamba-gasa": ["(+0.80)", "(+0.47)", "(+1.15)", "(+2.17)", "(+3.86)", "(+3.46)"],
    "unetr-gasa": ["(+0.39)", "(+0.69)", "(+2.93)", "(+3.35)", "(+0.49)", "(+1.29)"],
    "vnet-gasa": ["(+0.15)", "(-0.18)", "(+1.97)", "(+3.19)", "(+2.89)", "(+2.80)"],
    "gasa-unet": ["(+0.17)", "(-0.07)", "(+0.08)", "(+0.06)", "(+0.98)", "(+1.22)"],
    "gasa-l": ["(+0.89)", "(+0.94)", "(+0.12)", "(+0.35)", "(+1.50)", "(+2.38)"],
    "nnunet-cbam": ["(-0.04)", "(-0.26)", "(+0.06)", "(+0.00)", "(-0.11)", "(+0.02)"],
    "nnunet-at": ["(-0.17)", "(-0.14)", "(-0.13)", "(-0.02)", "(+0.66)", "(+0.74)"],
    "nnunet-mat": ["(-0.23)", "(-0.27)", "", "", "(+0.28)", "(+0.27)"],
}


def test_tables_hold_the_papers_rows_in_order() -> None:
    assert table_spec(2).networks == ("nnunet", "nnunet-cbam", "nnunet-at", "nnunet-mat", "gasa-unet", "gasa-l")
    assert table_spec("1").networks == ("nnmamba", "nnmamba-gasa", "unetr", "unetr-gasa", "vnet", "vnet-gasa",
                                        "nnunet", "gasa-unet", "gasa-l")  # fmt: skip
    one = table_spec(1)
    assert [one.method(n).baseline for n in ("nnmamba-gasa", "unetr-gasa", "vnet-gasa", "gasa-l")] == [
        "nnmamba", "unetr", "vnet", "nnunet"]  # fmt: skip
    assert table_spec(2).method("nnunet-mat").skips["amos"].startswith("MAT cannot process asymmetric 3D features")
    with pytest.raises(ValueError, match=r"table must be one of \[1, 2\], got 3"):
        table_spec(3)
    with pytest.raises(ValueError, match=r"table 2 has no row 'vnet'; its rows are \['nnunet'"):
        table_spec(2).method("vnet")


@pytest.mark.parametrize("number", sorted(TABLES))
def test_transcribed_paper_values_give_the_papers_brackets(number: int) -> None:
    table = table_spec(number)
    for method in table.methods:
        assert method.baseline is None or method.baseline in table.networks
        if method.baseline is None:
            continue
        base = table.method(method.baseline)
        brackets = []
        for key in ("btcv", "amos", "kits23"):
            for i in range(2):
                value, reference = method.paper.get(key), base.paper.get(key)
                brackets.append(format_difference(value[i] / 100, reference[i] / 100) if value and reference else "")
        assert brackets == PAPER_BRACKETS[method.network], method.network


def _plan(table: TableSpec, key: str = "btcv", **kwargs: object) -> object:
    arguments = {"networks": None, "folds": ["0", "1"], "seeds": [0], "trainable": TODAY, "device": "cpu",
                 "cuda_available": False} | kwargs  # fmt: skip
    return build_run_plan(table, key, **arguments)  # type: ignore[arg-type]


def test_plan_runs_rows_in_order_seeds_then_folds_and_skips_with_reasons() -> None:
    table = TableSpec(
        9,
        "test",
        (
            Method("nnunet", "nnUNet"),
            Method("no-such-network", "+X", baseline="nnunet"),
            Method("nnunet-resenc", "+R", baseline="nnunet"),  # registered, not a gasa-train variant
            Method("nnmamba", "+M", baseline="nnunet"),
            Method("gasa-unet", "+G", baseline="nnunet", skips={"amos": "the paper has none"}),
        ),
    )
    assert "nnunet-resenc" in NETWORKS and "no-such-network" not in NETWORKS
    plan = _plan(table, seeds=[0, 1])
    assert plan.runs == (
        RunKey("nnunet", "0", 0), RunKey("nnunet", "1", 0), RunKey("nnunet", "0", 1), RunKey("nnunet", "1", 1),
        RunKey("gasa-unet", "0", 0), RunKey("gasa-unet", "1", 0), RunKey("gasa-unet", "0", 1),
        RunKey("gasa-unet", "1", 1),
    )  # fmt: skip
    assert plan.runs[0].name == "nnunet/fold_0/seed_0"
    assert plan.skipped["no-such-network"].startswith(
        "network 'no-such-network' is not in this installation's registry"
    )
    assert (
        plan.skipped["nnunet-resenc"]
        == "network 'nnunet-resenc' is registered but `gasa-train train` cannot train it yet"
    )
    assert plan.skipped["nnmamba"] == "nnmamba needs CUDA (its Mamba kernels exist on CUDA only); this run uses cpu"
    assert "nnmamba" not in _plan(table, device="cuda", cuda_available=True).skipped
    assert _plan(table, "amos", networks=["nnunet", "gasa-unet"]).skipped == {"gasa-unet": "the paper has none"}


def test_plan_refuses_unknown_rows_and_empty_plans() -> None:
    with pytest.raises(ValueError, match=r"table 2 has no row 'unetr'"):
        _plan(table_spec(2), networks=["nnunet", "unetr"])
    with pytest.raises(ValueError, match=r"nothing to run for table 2 on amos: \{'nnunet-mat': 'MAT cannot"):
        _plan(table_spec(2), "amos", networks=["nnunet-mat"])
    with pytest.raises(ValueError, match="at least one fold and one seed"):
        _plan(table_spec(2), folds=[])


def test_rows_whose_plans_cannot_be_made_move_to_the_skipped_rows_with_their_reason() -> None:
    plan = _plan(table_spec(2), networks=["nnunet", "nnunet-mat", "gasa-unet"], trainable=[*TODAY, "nnunet-mat"])
    assert plan.skipped == {}
    reduced = plan.without({"nnunet-mat": "its plans cannot be made: not cubic", "vnet": "not in this plan"})
    assert list(dict.fromkeys(run.network for run in reduced.runs)) == ["nnunet", "gasa-unet"]
    assert len(reduced.runs) == len(plan.runs) - sum(run.network == "nnunet-mat" for run in plan.runs)
    assert reduced.skipped == {"nnunet-mat": "its plans cannot be made: not cubic"}
    assert plan.without({}) == plan
    with pytest.raises(ValueError, match="nothing left to run on btcv"):
        plan.without({"nnunet": "a", "nnunet-mat": "b", "gasa-unet": "c"})


def test_state_resumes_only_when_asked_and_only_its_own_configuration(tmp_path: Path) -> None:
    config = {"table": 2, "dataset_key": "btcv", "dataset": "Dataset017_BTCV", "schedule": {"epochs": 1000}}
    path = tmp_path / "btcv" / "state.json"
    state = ReproductionState.open(path, config, resume=False)
    state.mark_started("nnunet/fold_0/seed_0", {"network": "nnunet", "fold": "0", "seed": 0})
    assert state.was_started("nnunet/fold_0/seed_0") and not state.is_done("nnunet/fold_0/seed_0")
    state.mark_done("nnunet/fold_0/seed_0", {"dice": 0.8})
    again = ReproductionState.open(path, config, resume=True)
    assert again.is_done("nnunet/fold_0/seed_0") and again.runs["nnunet/fold_0/seed_0"]["dice"] == 0.8
    assert again.done_runs().keys() == {"nnunet/fold_0/seed_0"}
    with pytest.raises(ValueError, match=r"already records 1 run\(s\): pass --continue to resume them"):
        ReproductionState.open(path, config, resume=False)
    other = config | {"schedule": {"epochs": 1}}
    with pytest.raises(ValueError, match=r"was written for \{'schedule': \{'epochs': 1000\}\}, this call asks for"):
        ReproductionState.open(path, other, resume=True)
    path.write_text(json.dumps({"schema_version": 99, "config": {}}))
    with pytest.raises(ValueError, match="must have schema_version 1, got 99"):
        ReproductionState.read(path)
    path.write_text("{broken")
    with pytest.raises(ValueError, match="must be a reproduction state file"):
        ReproductionState.read(path)


def test_command_line_and_worker_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["reproduce", "2", "--dataset", "btcv", "--tiny", "--methods", "nnunet", "gasa-unet"])
    assert (args.table, args.dataset, args.methods, args.tiny, args.device) == (2, "btcv", ["nnunet", "gasa-unet"],
                                                                                True, None)  # fmt: skip
    assert parser.parse_args(["reproduce", "1", "--dataset", "kits23", "--continue"]).resume
    for bad in (["reproduce", "3", "--dataset", "btcv"], ["reproduce", "2", "--dataset", "lits"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)

    from train.reproduce.plan import schedule_for

    schedule = schedule_for(tiny=True, epochs=3)
    assert (schedule.epochs, schedule.iterations_per_epoch, schedule.val_iterations_per_epoch) == (3, 2, 1)
    assert schedule_for(tiny=False).epochs == 1000 and schedule_for(tiny=False).iterations_per_epoch == 250
    args = worker_arguments("Dataset017_BTCV", network="gasa-unet", fold="0", seed=1, device="cuda", schedule=schedule,
                            plans_name="nnUNetPlans", result=Path("r.json"), resume=True)  # fmt: skip
    assert args[:9] == ["Dataset017_BTCV", "--variant", "gasa-unet", "--fold", "0", "--seed", "1", "--device", "cuda"]
    assert args[-1] == "--continue" and "--lr" not in args  # the network's own rate comes from the registry
    context = RunContext("Dataset017_BTCV", "btcv", Path("out/btcv"), Path("pre"), schedule, "cuda", nproc_per_node=4)
    assert worker_command(context, args)[:7] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                 "--nproc_per_node=4", "-m", "train.reproduce.worker"]  # fmt: skip
    single = RunContext("Dataset017_BTCV", "btcv", Path("out/btcv"), Path("pre"), schedule, "cpu")
    assert worker_command(single, args)[:3] == [sys.executable, "-m", "train.reproduce.worker"]
    assert single.results_root(1) == Path("out/btcv/seed_1")


def test_test_images_are_listed_by_case_and_requests_checked(tmp_path: Path) -> None:
    from train.reproduce.runner import ReproduceRequest
    from train.reproduce.testset import list_test_images

    images = tmp_path / "imagesTs"
    images.mkdir()
    for name in ("case_a_0000.nii.gz", "case_b.nii.gz", "notes.txt"):
        (images / name).write_bytes(b"")
    assert list_test_images(images) == {"case_a": images / "case_a_0000.nii.gz", "case_b": images / "case_b.nii.gz"}
    (images / "case_a_0001.nii.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"must have one channel \(_0000\), got case_a_0001.nii.gz"):
        list_test_images(images)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"expected test images in .*empty, found none"):
        list_test_images(empty)
    with pytest.raises(ValueError, match=r"test images and test labels go together, got images .* and labels None"):
        ReproduceRequest(table=2, dataset_key="btcv", out=tmp_path, test_images=images)
    with pytest.raises(ValueError, match=r"dataset must be one of \['amos', 'btcv', 'kits23'\], got 'lits'"):
        ReproduceRequest(table=2, dataset_key="lits", out=tmp_path)
