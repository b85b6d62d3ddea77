"""How a model runs: the one :class:`SegmentOptions` that the CLI, the Python API and the Slicer module build.

Imports no torch (the Slicer module builds options in Slicer's own process). Every rule lives here once:
the validators below are what ``SegmentOptions.__post_init__`` calls, what
:class:`~GASACore.inference.SlidingWindowConfig` reuses, and :func:`add_arguments` declares the matching
``gasa-segment`` arguments, so that options -> :meth:`SegmentOptions.to_argv` -> parser ->
:meth:`SegmentOptions.from_args` gives the same options back::

    >>> options = SegmentOptions(device="cuda:1", folds=FoldSelection.named(["0", "all"]), tta=False)
    >>> options.to_argv()
    ['--device', 'cuda:1', '--folds', '0', 'all', '--no-tta', '--step-size', '0.5', '--batch-size', '1']
    >>> SegmentOptions(cpu_backend="eager").to_argv()[-2:]  # only a backend other than auto is written
    ['--cpu-backend', 'eager']
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> SegmentOptions.from_args(parser.parse_args(options.to_argv())) == options
    True

Reporting (``--progress``) and outputs (``-o``, ``--overlay``...) are not options of the run; they stay
with the CLI.
"""

from __future__ import annotations

import argparse
import math
import numbers
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from GASACore.enums import StrEnum
from GASACore.errors import GASAError

__all__ = [
    "CpuBackend",
    "Device",
    "DeviceKind",
    "FoldSelection",
    "OptionError",
    "SegmentOptions",
    "add_arguments",
    "check_batch_size",
    "check_cpu_backend",
    "check_flag",
    "check_step_size",
]

#: The ``gasa-segment`` flag of each :class:`SegmentOptions` field (error messages name the flag on the CLI).
FLAGS: Mapping[str, str] = {
    "device": "--device",
    "folds": "--folds",
    "tta": "--no-tta",
    "step_size": "--step-size",
    "fast": "--fast",
    "skip_air": "--skip-air",
    "batch_size": "--batch-size",
    "offline": "--offline",
    "cpu_backend": "--cpu-backend",
}


class OptionError(GASAError, ValueError):
    """An option value that does not fit; the message says what was expected and what was given.

    Attributes:
        field: the :class:`SegmentOptions` field (or the name the caller validated under).
        expected: what the value must be, e.g. ``"a number in (0, 1]"``.
        got: the value that was given.
    """

    def __init__(self, field: str, expected: str, got: object, *, name: str | None = None) -> None:
        self.field, self.expected, self.got = field, expected, got
        super().__init__(f"{name or field} must be {expected}, got {got!r}")

    def for_command_line(self) -> OptionError:
        """The same error worded with the ``gasa-segment`` flag, e.g. ``--step-size must be ...``."""
        return OptionError(self.field, self.expected, self.got, name=FLAGS.get(self.field, self.field))


# --- device ---------------------------------------------------------------------------------------------


class DeviceKind(StrEnum):
    """Where the network runs."""

    AUTO = "auto"  #: CUDA device 0 when it is usable, else the CPU (decided per run, with a reason)
    CPU = "cpu"
    CUDA = "cuda"  #: a CUDA device; an error when it is not usable


_DEVICE_EXPECTED = "'auto', 'cpu', 'cuda' or 'cuda:N'"
_DEVICE_TEXT = re.compile(r"(auto|cpu|cuda)(?::(\d+))?")


@dataclass(frozen=True)
class Device:
    """A device request: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. It is resolved (checked) once per run.

    Examples::

        >>> Device.parse(" CUDA:1 "), str(Device.parse("cuda:1")), Device.parse("cuda").cuda_index
        (Device(kind=<DeviceKind.CUDA: 'cuda'>, index=1), 'cuda:1', 0)

    Attributes:
        kind: auto, cpu or cuda.
        index: the CUDA device ordinal for ``cuda:N``; ``None`` otherwise (``cuda`` alone is device 0).
    """

    kind: DeviceKind = DeviceKind.AUTO
    index: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, DeviceKind):
            if self.kind not in DeviceKind.values():
                raise OptionError("device", _DEVICE_EXPECTED, self.kind)
            object.__setattr__(self, "kind", DeviceKind(self.kind))
        if self.index is not None:
            bad_index = not isinstance(self.index, int) or isinstance(self.index, bool) or self.index < 0
            if bad_index or self.kind is not DeviceKind.CUDA:
                raise OptionError("device", _DEVICE_EXPECTED, f"{self.kind.value}:{self.index}")

    @classmethod
    def parse(cls, value: Device | str | Any) -> Device:
        """A :class:`Device` from its text (case and surrounding blanks ignored) or a ``torch.device``.

        Raises:
            OptionError: anything but ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        """
        if isinstance(value, Device):
            return value
        if not isinstance(value, str) and getattr(value, "type", None) in ("cpu", "cuda"):
            value = str(value)  # a torch.device, without importing torch
        match = _DEVICE_TEXT.fullmatch(value.strip().lower()) if isinstance(value, str) else None
        if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
            raise OptionError("device", _DEVICE_EXPECTED, value)
        return cls(DeviceKind(match.group(1)), None if match.group(2) is None else int(match.group(2)))

    @property
    def cuda_index(self) -> int:
        """The CUDA ordinal this request is about: ``N`` for ``cuda:N``, else 0 (``auto`` tries device 0)."""
        return 0 if self.index is None else self.index

    def __str__(self) -> str:
        return self.kind.value if self.index is None else f"cuda:{self.index}"


# --- CPU backend ----------------------------------------------------------------------------------------


class CpuBackend(StrEnum):
    """How the network's forward passes run on the CPU (:func:`GASACore.inference.cpu_runtime.prepare_cpu_forward`).

    Measured on the demo model (``bench/cpu_conv_bench.py``, 1 thread): eager 0.44 s per window, onednn 0.078 s,
    openvino 0.051 s after a one-off conversion of 15-250 s and less exact on large windows (demo model 0.1.0,
    48x40x48 windows). On a CPU with AMX (demo model 0.2.0, 64^3 windows): onednn 0.195 s, onednn-bf16 ~0.1 s.
    """

    AUTO = "auto"  #: ``onednn-bf16`` where the CPU has AMX bf16 units, else ``onednn`` (with oneDNN), else ``eager``
    EAGER = "eager"  #: plain PyTorch, its own convolution dispatch
    ONEDNN = "onednn"  #: plain PyTorch with every 3D convolution on oneDNN, channels-last activations
    ONEDNN_BF16 = "onednn-bf16"  #: as ``onednn`` with bfloat16 convolutions and activations, float32 logits
    OPENVINO = "openvino"  #: the network converted to OpenVINO (optional package ``openvino``)


def check_cpu_backend(value: object, field: str = "cpu_backend") -> CpuBackend:
    """``value`` as a :class:`CpuBackend` (its text, any case, or the member itself)."""
    text = getattr(value, "value", value)
    if isinstance(text, str) and text.strip().lower() in CpuBackend.values():
        return CpuBackend(text.strip().lower())
    raise OptionError(field, f"one of {list(CpuBackend.values())}", value)


# --- folds ----------------------------------------------------------------------------------------------

_FOLD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_FOLD_EXPECTED = "fold names such as 0, 1 or all (letters, digits, '_' and '-'), each once"


@dataclass(frozen=True)
class FoldSelection:
    """Which folds of a model to ensemble: every fold it has, or the named ones.

    A name is what follows ``fold_`` in nnU-Net's folder names: ``"0"``, ``"1"``... and ``"all"``, which is
    nnU-Net's ``fold_all`` (one model trained on every case), never "every fold". ``0``, ``"0"`` and
    ``"fold_0"`` name the same fold. Examples::

        >>> FoldSelection.every().is_every, FoldSelection.named([0, "fold_2", "all"]).names
        (True, ('0', '2', 'all'))
        >>> FoldSelection.parse("0, 1 2").names, FoldSelection.parse("  ").is_every
        (('0', '1', '2'), True)

    Attributes:
        names: the selected fold names, in order; empty means every fold of the model.
    """

    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.names, str) or not isinstance(self.names, Sequence):
            raise OptionError("folds", f"a sequence of {_FOLD_EXPECTED}", self.names)
        names = tuple(_fold_name(name, self.names) for name in self.names)
        if len(set(names)) != len(names):
            raise OptionError("folds", _FOLD_EXPECTED, list(self.names))
        object.__setattr__(self, "names", names)

    @classmethod
    def every(cls) -> FoldSelection:
        """Every fold the model has (the default)."""
        return cls(())

    @classmethod
    def named(cls, names: Sequence[str | int]) -> FoldSelection:
        """Exactly these folds, e.g. ``FoldSelection.named(["0", "all"])``.

        Raises:
            OptionError: no names, a malformed name or a name given twice.
        """
        if isinstance(names, str) or not isinstance(names, Sequence) or len(names) == 0:
            raise OptionError("folds", f"at least one of {_FOLD_EXPECTED} (FoldSelection.every(): all)", names)
        return cls(tuple(names))  # type: ignore[arg-type]

    @classmethod
    def parse(cls, text: str) -> FoldSelection:
        """Folds typed by a user, separated by blanks or commas: ``"0, 1 2"``; empty text is every fold."""
        if not isinstance(text, str):
            raise OptionError("folds", "text such as '0 1 2' (empty: every fold)", text)
        return cls(tuple(part for part in text.replace(",", " ").split() if part))

    @property
    def is_every(self) -> bool:
        """Whether every fold of the model is used."""
        return not self.names

    def to_argv(self) -> list[str]:
        """``[]`` for every fold, else ``["--folds", name, ...]``."""
        return [] if self.is_every else ["--folds", *self.names]

    def __str__(self) -> str:
        return " ".join(self.names)


def _fold_name(name: object, given: object) -> str:
    text = str(name).strip() if isinstance(name, (str, int)) and not isinstance(name, bool) else ""
    text = text.removeprefix("fold_")
    if not _FOLD_NAME.fullmatch(text):
        raise OptionError("folds", _FOLD_EXPECTED, given if not isinstance(given, tuple) else list(given))
    return text


# --- validators -----------------------------------------------------------------------------------------


def check_flag(value: object, field: str) -> bool:
    """``value`` when it is a ``bool``; refuses 0/1, strings and ``None``, which usually hide a mistake."""
    if not isinstance(value, bool):
        raise OptionError(field, "True or False", value)
    return value


def check_step_size(value: object, field: str = "step_size") -> float:
    """The sliding-window step as a fraction of the patch: a finite number in ``(0, 1]`` (nnU-Net: 0.5)."""
    number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or not 0 < number <= 1:
        raise OptionError(field, "a number in (0, 1]", value)
    return number


def check_batch_size(value: object, field: str = "batch_size") -> int:
    """Windows per forward pass: an integer >= 1."""
    try:
        number = operator.index(value) if not isinstance(value, bool) else None  # type: ignore[arg-type]
    except TypeError:
        number = None
    if number is None or number < 1:
        raise OptionError(field, "an integer >= 1", value)
    return number


def _check_folds(value: object) -> FoldSelection:
    if value is None:
        return FoldSelection.every()
    if isinstance(value, FoldSelection):
        return value
    if isinstance(value, str):
        return FoldSelection.parse(value)
    if isinstance(value, Sequence):
        return FoldSelection(tuple(value))
    raise OptionError("folds", "a FoldSelection, a sequence of fold names, or None (every fold)", value)


# --- the options ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentOptions:
    """How a model runs. Values are checked and normalised on creation (strings become :class:`Device` and
    :class:`FoldSelection`); a bad value raises :class:`OptionError`.

    Attributes:
        device: ``"auto"`` (CUDA device 0 when usable, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        folds: the folds to ensemble (:class:`FoldSelection`); also a sequence of names or ``None`` (every).
        tta: mirroring test-time augmentation on the model's allowed axes (up to 8 passes per window).
        step_size: sliding-window step as a fraction of the patch, ``0 < step_size <= 1`` (nnU-Net: 0.5).
        fast: first selected fold only, no TTA and step 1.0: several times faster, slightly less accurate.
        skip_air: skip windows whose every voxel is air (<= -900 HU); CT-normalised models only.
        batch_size: windows per forward pass (halved automatically on CUDA out-of-memory).
        offline: never open a network connection: a catalogue model that is not installed is an error
            instead of a download (``GASACore.models.resolve_model``).
        cpu_backend: how forward passes run when the device is the CPU (:class:`CpuBackend`; ``auto``:
            bfloat16 oneDNN on CPUs with AMX bf16 units, else float32 oneDNN). Ignored on CUDA.
    """

    device: Device = Device()
    folds: FoldSelection = FoldSelection()
    tta: bool = True
    step_size: float = 0.5
    fast: bool = False
    skip_air: bool = False
    batch_size: int = 1
    offline: bool = False
    cpu_backend: CpuBackend = CpuBackend.AUTO

    def __post_init__(self) -> None:
        checked = {
            "device": Device.parse(self.device),
            "folds": _check_folds(self.folds),
            "tta": check_flag(self.tta, "tta"),
            "step_size": check_step_size(self.step_size),
            "fast": check_flag(self.fast, "fast"),
            "skip_air": check_flag(self.skip_air, "skip_air"),
            "batch_size": check_batch_size(self.batch_size),
            "offline": check_flag(self.offline, "offline"),
            "cpu_backend": check_cpu_backend(self.cpu_backend),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def window_step(self) -> float:
        """The step the sliding window uses: 1.0 in fast mode, else :attr:`step_size`."""
        return 1.0 if self.fast else self.step_size

    @property
    def mirroring(self) -> bool:
        """Whether test-time mirroring runs (never in fast mode)."""
        return self.tta and not self.fast

    @property
    def max_folds(self) -> int | None:
        """How many of the selected folds run: 1 in fast mode, else all of them (``None``)."""
        return 1 if self.fast else None

    def to_argv(self) -> list[str]:
        """The ``gasa-segment`` arguments that give these options (see :func:`add_arguments`)."""
        argv = ["--device", str(self.device), *self.folds.to_argv()]
        argv += [] if self.tta else ["--no-tta"]
        argv += ["--step-size", repr(self.step_size)]
        argv += ["--fast"] if self.fast else []
        argv += ["--skip-air"] if self.skip_air else []
        argv += ["--batch-size", str(self.batch_size)]
        argv += ["--offline"] if self.offline else []
        return argv if self.cpu_backend is CpuBackend.AUTO else [*argv, "--cpu-backend", self.cpu_backend.value]

    @classmethod
    def from_args(cls, args: argparse.Namespace | Mapping[str, Any]) -> SegmentOptions:
        """Options from a namespace parsed with :func:`add_arguments`, or from a mapping of field names.

        A namespace may hold other arguments (input, output...), which are ignored; a mapping may hold
        only field names. Missing fields take their defaults.

        Raises:
            OptionError: a bad value (worded with the ``gasa-segment`` flag for a namespace), or an unknown
                key in a mapping.
        """
        names = [f.name for f in fields(cls)]
        if isinstance(args, argparse.Namespace):
            values = {name: getattr(args, name) for name in names if hasattr(args, name)}
            try:
                return cls(**values)
            except OptionError as err:
                raise err.for_command_line() from None
        unknown = sorted(set(args) - set(names))
        if unknown:
            raise OptionError("options", f"a mapping with keys among {names}", unknown)
        return cls(**dict(args))


_DEFAULTS = SegmentOptions()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``gasa-segment`` arguments of :class:`SegmentOptions` on ``parser`` (one argument group).

    The arguments only parse text (a number is a number); :class:`SegmentOptions` checks the values, so
    ``SegmentOptions.from_args(parser.parse_args(...))`` is where a bad value is refused.
    """
    group = parser.add_argument_group("how the model runs")
    group.add_argument(
        "--device",
        default=str(_DEFAULTS.device),
        metavar="{auto,cpu,cuda,cuda:N}",
        help="auto: CUDA device 0 when it is usable (else the CPU, saying why); cuda/cuda:N: that GPU or an error",
    )
    group.add_argument(
        "--folds",
        nargs="+",
        default=None,
        metavar="FOLD",
        help="folds to ensemble, e.g. 0 1 2 (default: every fold of the model); 'all' is nnU-Net's fold_all folder",
    )
    group.add_argument(
        "--no-tta", dest="tta", action="store_false", help="no mirroring test-time augmentation (about 8x faster)"
    )
    group.add_argument(
        "--step-size",
        type=float,
        default=_DEFAULTS.step_size,
        help=f"window step as a fraction of the patch, in (0, 1] (default {_DEFAULTS.step_size})",
    )
    group.add_argument("--fast", action="store_true", help="first fold only, no TTA, step 1.0")
    group.add_argument("--skip-air", action="store_true", help="skip windows that hold only air (CT models)")
    group.add_argument(
        "--batch-size",
        type=int,
        default=_DEFAULTS.batch_size,
        help=f"windows per forward pass (default {_DEFAULTS.batch_size})",
    )
    group.add_argument(
        "--offline",
        action="store_true",
        help="never open a network connection: a catalogue model that is not installed is an error, not a download",
    )
    group.add_argument(
        "--cpu-backend",
        default=_DEFAULTS.cpu_backend.value,
        metavar="{" + ",".join(CpuBackend.values()) + "}",
        help=(
            "how the network runs on the CPU: auto (= onednn-bf16 on CPUs with AMX bf16 units, e.g. Xeon "
            "Sapphire Rapids and later, else onednn), onednn (every 3D convolution on oneDNN in float32, ~5x faster "
            "than eager for small networks, outputs within 1e-5), onednn-bf16 (the same in bfloat16: ~1.6x faster per "
            "window on AMX, argmax agreement >= 99.9%%, float32 logits), eager (plain PyTorch), openvino (optional "
            "package; converts the model first)"
        ),
    )
