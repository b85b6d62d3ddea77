"""Device choice and resources: is CUDA usable (and why not), CPU threads, GPU memory.

One rule decides whether a CUDA device can run this torch build (:func:`unusable_reason`: a CUDA build, a
visible device, kernels for its compute capability), applied once per run by :func:`select_device` and
reported by ``gasa-segment --check-device`` (:func:`device_report`), which the Slicer module's "Check GPU"
shows. The reasons are meant for users.
"""

from __future__ import annotations

import gc
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import torch

from GASACore.errors import GASAError
from GASACore.options import Device, DeviceKind

__all__ = [
    "CudaEnvironment",
    "DeviceDecision",
    "GpuInfo",
    "ResolvedDevice",
    "accumulation_fits",
    "arch_supported",
    "available_cpus",
    "check_device",
    "cpu_threads",
    "cuda_environment",
    "cuda_unusable_reason",
    "decide_device",
    "device_report",
    "free_cuda_memory",
    "resolve_num_threads",
    "select_device",
    "unusable_reason",
    "with_cpu_fallback",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

_ARCH = re.compile(r"^(sm|compute)_(\d+)([a-z]?)$")
#: Environment variables by which a user sets the CPU thread count; ``num_threads=None`` then leaves torch as is.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def arch_supported(capability: tuple[int, int], arch_list: Sequence[str]) -> bool:
    """Whether a torch build with ``arch_list`` has kernels for a GPU of compute ``capability``.

    A cubin ``sm_XY`` runs on devices of major ``X`` and minor ``>= Y`` (``sm_90a`` only on exactly 9.0);
    PTX ``compute_XY`` is compiled just in time for any device of capability ``>= X.Y``.

    Args:
        capability: ``(major, minor)``, e.g. ``(8, 6)`` for an RTX 3090.
        arch_list: ``torch.cuda.get_arch_list()``, e.g. ``["sm_80", "sm_90", "compute_90"]``.

    Returns:
        ``True`` when some entry covers the device.
    """
    for arch in arch_list:
        match = _ARCH.match(arch.strip().lower())
        if match is None:
            continue
        kind, number, suffix = match.group(1), int(match.group(2)), match.group(3)
        built = (number // 10, number % 10)
        if suffix:
            covered = kind == "sm" and built == tuple(capability)
        elif kind == "sm":
            covered = built[0] == capability[0] and built[1] <= capability[1]
        else:
            covered = built <= tuple(capability)
        if covered:
            return True
    return False


def _device_label(index: int) -> str:
    major, minor = torch.cuda.get_device_capability(index)
    return f"CUDA device {index} ({torch.cuda.get_device_name(index)}, capability {major}.{minor})"


@dataclass(frozen=True)
class GpuInfo:
    """One visible CUDA device as torch reports it.

    Attributes:
        name: e.g. ``"NVIDIA L4"``.
        capability: compute capability ``(major, minor)``, e.g. ``(8, 9)``.
        total_memory: bytes of device memory.
    """

    name: str
    capability: tuple[int, int]
    total_memory: int

    def label(self, index: int) -> str:
        """``"CUDA device 0 (NVIDIA L4, capability 8.9)"``."""
        return f"CUDA device {index} ({self.name}, capability {self.capability[0]}.{self.capability[1]})"


@dataclass(frozen=True)
class CudaEnvironment:
    """What the torch build and the driver offer; everything the device rule looks at.

    Attributes:
        torch_version: ``torch.__version__``.
        cuda_version: the CUDA version torch was built with (``torch.version.cuda``), ``None`` on a CPU build.
        cuda_built: whether torch was built with CUDA.
        arch_list: the build's kernel architectures, e.g. ``("sm_80", "sm_90", "compute_90")``.
        gpus: the visible devices, by ordinal.
        visible_devices: ``CUDA_VISIBLE_DEVICES`` when set.
        cudnn_version: e.g. ``90100``, ``None`` without cuDNN.
    """

    torch_version: str
    cuda_version: str | None
    cuda_built: bool
    arch_list: tuple[str, ...] = ()
    gpus: tuple[GpuInfo, ...] = ()
    visible_devices: str | None = None
    cudnn_version: int | None = None


def cuda_environment() -> CudaEnvironment:
    """Ask torch what it was built with and which devices it sees (initialises CUDA when there is a GPU)."""
    built = bool(torch.backends.cuda.is_built())
    gpus: tuple[GpuInfo, ...] = ()
    if built and torch.cuda.is_available():
        gpus = tuple(
            GpuInfo(
                name=torch.cuda.get_device_name(i),
                capability=tuple(torch.cuda.get_device_capability(i)),  # type: ignore[arg-type]
                total_memory=int(torch.cuda.get_device_properties(i).total_memory),
            )
            for i in range(torch.cuda.device_count())
        )
    return CudaEnvironment(
        torch_version=str(torch.__version__),
        cuda_version=torch.version.cuda,
        cuda_built=built,
        arch_list=tuple(torch.cuda.get_arch_list()) if built else (),
        gpus=gpus,
        visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        cudnn_version=torch.backends.cudnn.version() if built and torch.backends.cudnn.is_available() else None,
    )


def unusable_reason(env: CudaEnvironment, index: int = 0) -> str | None:
    """Why CUDA device ``index`` cannot run this build, judged from what torch reports; ``None`` when it can.

    Checks, in order: a CUDA build, a visible device, the device's compute capability against the build's
    architectures (:func:`arch_supported`: same-major cubins and PTX). No computation runs here; see
    :func:`cuda_unusable_reason` for the check that also runs one.

    Examples::

        >>> l4 = GpuInfo("NVIDIA L4", (8, 9), 24 * 2**30)
        >>> unusable_reason(CudaEnvironment("2.5.1", "12.4", True, ("sm_80", "sm_86"), (l4,))) is None
        True
        >>> unusable_reason(CudaEnvironment("2.5.1+cpu", None, False))
        'torch was built without CUDA (torch 2.5.1+cpu)'
    """
    if not env.cuda_built:
        return f"torch was built without CUDA (torch {env.torch_version})"
    if not env.gpus:
        hint = f" (CUDA_VISIBLE_DEVICES={env.visible_devices!r})" if env.visible_devices is not None else ""
        return f"no CUDA device visible{hint}: is an NVIDIA GPU present and its driver installed?"
    if not 0 <= index < len(env.gpus):
        return f"CUDA device {index} was requested but only {len(env.gpus)} device(s) are visible"
    gpu = env.gpus[index]
    if env.arch_list and not arch_supported(gpu.capability, env.arch_list):
        return (
            f"{gpu.label(index)} is not supported by this torch build (torch {env.torch_version}, "
            f"CUDA {env.cuda_version}): supported archs {' '.join(env.arch_list)}"
        )
    return None


def cuda_unusable_reason(index: int = 0) -> str | None:
    """Why CUDA device ``index`` cannot run this torch build, or ``None`` when it can.

    :func:`unusable_reason` on what torch reports, then a tiny computation on the device.

    Args:
        index: CUDA device ordinal.

    Returns:
        ``None`` when usable; otherwise a one-line reason such as ``"torch was built without CUDA"``.
    """
    return unusable_reason(cuda_environment(), index) or _probe(index)


def _probe(index: int) -> str | None:
    """Run a tiny computation on CUDA device ``index``; the first line of the error when it fails."""
    try:
        probe = torch.ones(8, device=f"cuda:{index}")
        float((probe * 2).sum().item())
    except RuntimeError as err:  # a failed probe (driver/kernel image errors), not an out-of-memory recovery
        return f"{_device_label(index)} failed a test computation: {(str(err).splitlines() or [''])[0]}"
    return None


class ResolvedDevice(NamedTuple):
    """The device a run uses, and why (for the user)."""

    device: torch.device
    reason: str


@dataclass(frozen=True)
class DeviceDecision:
    """What a device request comes to (see :func:`decide_device`).

    Attributes:
        device: ``"cpu"`` or ``"cuda:N"``.
        cuda_usable: whether the CUDA device the request is about (``N``, or 0) can run this build.
        unusable_reason: why it cannot, ``None`` when it can.
        reason: one line for the user, e.g. ``"CUDA not usable (...); using the CPU"``.
    """

    device: str
    cuda_usable: bool
    unusable_reason: str | None
    reason: str


def decide_device(
    env: CudaEnvironment, request: Device, probe: Callable[[int], str | None] | None = None
) -> DeviceDecision:
    """Apply the device rule to a request: ``auto`` takes CUDA device 0 when usable, else the CPU.

    Args:
        env: what torch offers (:func:`cuda_environment`).
        request: auto, cpu, cuda or cuda:N.
        probe: runs a test computation on a device that passed the static checks and returns why it failed;
            ``None`` skips it (pure use, tests).

    Returns:
        The decision; an explicit ``cuda``/``cuda:N`` request keeps its device even when it is unusable
        (:func:`select_device` then refuses it).
    """
    index = request.cuda_index
    why_not = unusable_reason(env, index)
    if why_not is None and probe is not None:
        why_not = probe(index)
    usable = why_not is None
    label = env.gpus[index].label(index) if usable else ""
    if request.kind is DeviceKind.AUTO:
        device = f"cuda:{index}" if usable else "cpu"
        reason = f"{label} is usable" if usable else f"CUDA not usable ({why_not}); using the CPU"
    elif request.kind is DeviceKind.CPU:
        device = "cpu"
        reason = "the CPU was requested; " + (f"{label} is usable too" if usable else f"CUDA is not usable: {why_not}")
    else:
        device = f"cuda:{index}"
        reason = (
            f"{label} was requested and is usable"
            if usable
            else f"device {str(request)!r} was requested but CUDA is not usable: {why_not}"
        )
    return DeviceDecision(device, usable, why_not, reason)


def select_device(requested: Device | str = "auto") -> ResolvedDevice:
    """Resolve a device request to a usable device and say why; a run does this once.

    Args:
        requested: ``"auto"`` (CUDA when usable, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
            :class:`~GASACore.options.Device`.

    Returns:
        ``(device, reason)``; ``reason`` is human-readable, e.g. ``"CUDA not usable (torch was built without
        CUDA ...); using the CPU"``.

    Raises:
        OptionError: ``requested`` is none of the accepted strings (a ``ValueError``).
        GASAError: CUDA was requested explicitly but is not usable; the message gives the reason.
    """
    request = Device.parse(requested)
    if request.kind is DeviceKind.CPU:
        return ResolvedDevice(torch.device("cpu"), "the CPU was requested")
    decision = decide_device(cuda_environment(), request, _probe)
    if request.kind is DeviceKind.CUDA and not decision.cuda_usable:
        raise GASAError(decision.reason)
    return ResolvedDevice(torch.device(decision.device), decision.reason)


def device_report(
    env: CudaEnvironment, request: Device, probe: Callable[[int], str | None] | None = None
) -> dict[str, Any]:
    """The ``gasa-segment --check-device`` report: one JSON-ready object.

    Keys: ``device`` (``"cpu"`` or ``"cuda:N"``: what the request comes to), ``requested``, ``cuda_usable``,
    ``reason`` (one line for the user), ``unusable_reason``, ``torch``, ``cuda``, ``cudnn``, ``cuda_built``,
    ``arch_list``, ``cuda_visible_devices`` and ``gpus`` (``index``, ``name``, ``capability`` as ``"8.9"``,
    ``memory_gib``, ``supported`` by this build's architectures).

    Args:
        env: what torch offers (:func:`cuda_environment`).
        request: the ``--device`` asked for.
        probe: see :func:`decide_device`.
    """
    decision = decide_device(env, request, probe)
    gpus = [
        {
            "index": index,
            "name": gpu.name,
            "capability": f"{gpu.capability[0]}.{gpu.capability[1]}",
            "memory_gib": round(gpu.total_memory / 2**30, 2),
            "supported": not env.arch_list or arch_supported(gpu.capability, env.arch_list),
        }
        for index, gpu in enumerate(env.gpus)
    ]
    return {
        "device": decision.device,
        "requested": str(request),
        "cuda_usable": decision.cuda_usable,
        "reason": decision.reason,
        "unusable_reason": decision.unusable_reason,
        "torch": env.torch_version,
        "cuda": env.cuda_version,
        "cudnn": env.cudnn_version,
        "cuda_built": env.cuda_built,
        "arch_list": list(env.arch_list),
        "cuda_visible_devices": env.visible_devices,
        "gpus": gpus,
    }


def check_device(requested: Device | str = "auto") -> dict[str, Any]:
    """:func:`device_report` for this machine, with the test computation on the device concerned."""
    return device_report(cuda_environment(), Device.parse(requested), _probe)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_num_threads(requested: int | None, environ: Mapping[str, str] | None = None) -> int | None:
    """The torch CPU thread count to set, or ``None`` to leave torch's setting alone.

    Args:
        requested: an explicit count (wins), or ``None`` for automatic.
        environ: environment to inspect (default ``os.environ``).

    Returns:
        ``requested``; else ``None`` when the user set ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``; else every
        available CPU.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"num_threads must be >= 1, got {requested!r}")
        return requested
    environ = os.environ if environ is None else environ
    if any(name in environ for name in THREAD_ENV_VARS):
        return None
    return available_cpus()


@contextmanager
def cpu_threads(requested: int | None) -> Iterator[int]:
    """Set torch's intra-op CPU threads for a block (see :func:`resolve_num_threads`) and restore them after.

    Yields:
        The thread count in effect inside the block.
    """
    before = torch.get_num_threads()
    wanted = resolve_num_threads(requested)
    changed = wanted is not None and wanted != before
    if changed:
        torch.set_num_threads(wanted)  # type: ignore[arg-type]
    try:
        yield torch.get_num_threads()
    finally:
        if changed:
            torch.set_num_threads(before)


def accumulation_fits(required_bytes: int, free_bytes: int) -> bool:
    """Whether the image and logit sums may live on the GPU: at most half its free memory.

    The other half is left to the network's activations (a 48x192x192 window of the paper's network in
    fp16 needs a few GiB).
    """
    return 0 <= required_bytes <= free_bytes // 2


def free_cuda_memory(device: torch.device) -> None:
    """Collect garbage and return cached CUDA blocks to the driver (no-op off CUDA)."""
    if device.type == "cuda" and torch.cuda.is_available():
        gc.collect()
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        logger.debug("freed cached CUDA memory on %s", device)


def with_cpu_fallback(step: Callable[[torch.device], T], device: torch.device | str, what: str) -> T:
    """Run ``step(device)``; when CUDA runs out of memory, free it and run ``step(cpu)`` instead.

    Only ``torch.cuda.OutOfMemoryError`` is caught (any other error is the step's own and propagates). Off CUDA
    this is ``step(device)``. Used for the steps around the prediction (pre-processing resampling, the
    restore step), which have a CPU version that gives the same result.

    Args:
        step: the work, restartable from scratch, on the device it is given.
        device: where to try first.
        what: the step's name for the warning, e.g. ``"the restore step"``.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return step(device)
    try:
        return step(device)
    except torch.cuda.OutOfMemoryError as err:
        reason = (str(err).splitlines() or ["CUDA out of memory"])[0]
        logger.warning("CUDA out of memory in %s on %s (%s); doing it on the CPU", what, device, reason)
    free_cuda_memory(device)  # outside the except block: its traceback no longer holds the step's tensors
    return step(torch.device("cpu"))
