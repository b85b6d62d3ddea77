"""SegmentOptions: validation with clear messages, and options -> argv -> parser -> options for every field."""

from __future__ import annotations

import argparse
import dataclasses
import itertools

import numpy as np
import pytest

from GASACore.cli import build_parser
from GASACore.options import (
    CpuBackend,
    Device,
    DeviceKind,
    FoldSelection,
    OptionError,
    SegmentOptions,
    add_arguments,
    check_batch_size,
    check_step_size,
)

#: Values to try per field, the default included; a new field without values here fails the round trip.
FIELD_VALUES: dict[str, list[object]] = {
    "device": [Device(), Device.parse("cpu"), Device.parse("cuda"), Device.parse("cuda:0"), Device.parse("cuda:1")],
    "folds": [
        FoldSelection.every(),
        FoldSelection.named(["0"]),
        FoldSelection.named(["0", "1", "2", "3", "4"]),
        FoldSelection.named(["all"]),
        FoldSelection.named(["3", "all", "1"]),
    ],
    "tta": [True, False],
    "step_size": [0.5, 1.0, 0.25, 1 / 3, 0.125, 1e-3],
    "fast": [False, True],
    "skip_air": [False, True],
    "batch_size": [1, 2, 16],
    "offline": [False, True],
    "cpu_backend": [CpuBackend.AUTO, CpuBackend.EAGER, CpuBackend.ONEDNN, CpuBackend.OPENVINO],
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    return parser


def _variants() -> list[SegmentOptions]:
    """Each value of each field on top of the defaults, then a few combinations of all fields."""
    variants = [SegmentOptions(**{name: value}) for name, values in FIELD_VALUES.items() for value in values]  # type: ignore[arg-type]
    for combo in itertools.islice(itertools.product(*FIELD_VALUES.values()), 0, None, 97):
        variants.append(SegmentOptions(**dict(zip(FIELD_VALUES, combo, strict=True))))  # type: ignore[arg-type]
    return variants


def test_every_field_has_round_trip_values() -> None:
    assert set(FIELD_VALUES) == {f.name for f in dataclasses.fields(SegmentOptions)}
    for f in dataclasses.fields(SegmentOptions):
        assert f.default in FIELD_VALUES[f.name], f"the default of {f.name} must be among its values"
        assert len({repr(v) for v in FIELD_VALUES[f.name]}) >= 2


@pytest.mark.parametrize("options", _variants(), ids=lambda o: " ".join(o.to_argv()))
def test_options_argv_options_round_trip(options: SegmentOptions) -> None:
    argv = options.to_argv()
    assert SegmentOptions.from_args(_parser().parse_args(argv)) == options
    full = build_parser().parse_args(["ct.nii.gz", "-o", "seg.nii.gz", "-m", "model", *argv])
    assert SegmentOptions.from_args(full) == options
    mapping = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    assert SegmentOptions.from_args(mapping) == options
    as_text = mapping | {"device": str(options.device), "folds": list(options.folds.names)}
    assert SegmentOptions.from_args(as_text) == options


def test_defaults_and_the_parser_defaults_agree() -> None:
    assert SegmentOptions.from_args(_parser().parse_args([])) == SegmentOptions()
    options = SegmentOptions()
    assert (options.device.kind, options.folds.is_every, options.tta, options.step_size) == (
        DeviceKind.AUTO,
        True,
        True,
        0.5,
    )
    assert options.to_argv() == ["--device", "auto", "--step-size", "0.5", "--batch-size", "1"]
    assert options.cpu_backend is CpuBackend.AUTO  # written only when not auto: the Slicer module never sets it
    assert SegmentOptions(cpu_backend=" OneDNN ").cpu_backend is CpuBackend.ONEDNN


def test_fast_mode_rules() -> None:
    fast = SegmentOptions(fast=True, step_size=0.25, folds=["2", "0"])
    assert (fast.window_step, fast.mirroring, fast.max_folds) == (1.0, False, 1)
    normal = SegmentOptions(step_size=0.25, tta=True)
    assert (normal.window_step, normal.mirroring, normal.max_folds) == (0.25, True, None)
    assert SegmentOptions(tta=False).mirroring is False


def test_normalisation() -> None:
    folds, step, batch = [0, "fold_1", "all"], np.float32(0.75), np.int64(4)
    options = SegmentOptions(device=" CUDA:2 ", folds=folds, step_size=step, batch_size=batch)  # type: ignore[arg-type]
    assert options.device == Device(DeviceKind.CUDA, 2) and str(options.device) == "cuda:2"
    assert options.folds.names == ("0", "1", "all") and str(options.folds) == "0 1 all"
    assert type(options.step_size) is float and type(options.batch_size) is int
    assert SegmentOptions(folds=None).folds == SegmentOptions(folds=[]).folds == FoldSelection.every()
    assert SegmentOptions(folds="0, 2").folds == FoldSelection.named(["0", "2"])
    assert FoldSelection.parse("").is_every and FoldSelection.parse(" all ").names == ("all",)
    assert Device.parse("cuda").cuda_index == 0 and Device.parse("cuda:3").cuda_index == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.tta = False  # type: ignore[misc]


def test_all_names_the_fold_all_folder_never_every_fold() -> None:
    assert FoldSelection.named(["all"]).to_argv() == ["--folds", "all"]
    assert FoldSelection.named(["all"]) != FoldSelection.every() and FoldSelection.every().to_argv() == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"device": "gpu"}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
        ({"device": "cpu:1"}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'cpu:1'"),
        ({"device": "cuda:-1"}, "got 'cuda:-1'"),
        ({"device": 0}, "got 0"),
        ({"folds": ["0", "fold_0"]}, r"folds must be fold names such as 0, 1 or all .* once, got \['0', 'fold_0'\]"),
        ({"folds": ["0 1"]}, "folds must be fold names"),
        ({"folds": ["../x"]}, "folds must be fold names"),
        ({"folds": [True]}, "folds must be fold names"),
        ({"folds": 3}, "folds must be a FoldSelection, a sequence of fold names, or None"),
        ({"tta": 1}, "tta must be True or False, got 1"),
        ({"fast": "yes"}, "fast must be True or False, got 'yes'"),
        ({"skip_air": None}, "skip_air must be True or False, got None"),
        ({"step_size": 0}, r"step_size must be a number in \(0, 1\], got 0"),
        ({"step_size": 1.5}, r"step_size must be a number in \(0, 1\], got 1.5"),
        ({"step_size": float("inf")}, "step_size must be a number"),
        ({"step_size": "0.5"}, "got '0.5'"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": 2.0}, "batch_size must be an integer >= 1, got 2.0"),
        ({"batch_size": True}, "got True"),
        (
            {"cpu_backend": "mkl"},
            r"cpu_backend must be one of \['auto', 'eager', 'onednn', 'onednn-bf16', 'openvino'\], got 'mkl'",
        ),
        ({"cpu_backend": None}, "cpu_backend must be one of .*, got None"),
    ],
)
def test_bad_values_say_what_was_expected_and_given(values: dict[str, object], message: str) -> None:
    with pytest.raises(OptionError, match=message) as caught:
        SegmentOptions(**values)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError) and caught.value.field == next(iter(values))


def test_command_line_errors_name_the_flag() -> None:
    with pytest.raises(OptionError, match=r"^--step-size must be a number in \(0, 1\], got 0.0$"):
        SegmentOptions.from_args(_parser().parse_args(["--step-size", "0"]))
    with pytest.raises(OptionError, match=r"^--device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'mps'$"):
        SegmentOptions.from_args(_parser().parse_args(["--device", "mps"]))
    with pytest.raises(OptionError, match=r"^--folds must be"):
        SegmentOptions.from_args(_parser().parse_args(["--folds", "0", "0"]))
    with pytest.raises(OptionError, match=r"^--cpu-backend must be one of .*, got 'onnx'$"):
        SegmentOptions.from_args(_parser().parse_args(["--cpu-backend", "onnx"]))
    with pytest.raises(OptionError, match=r"options must be a mapping with keys among .*, got \['stepsize'\]"):
        SegmentOptions.from_args({"stepsize": 0.5})


def test_named_needs_a_fold() -> None:
    with pytest.raises(OptionError, match=r"at least one of .*FoldSelection.every\(\)"):
        FoldSelection.named([])


def test_validators_name_the_callers_field() -> None:
    assert check_step_size(1) == 1.0 and check_batch_size(np.int32(3)) == 3
    with pytest.raises(OptionError, match="tile_step must be a number"):
        check_step_size(-1, "tile_step")
