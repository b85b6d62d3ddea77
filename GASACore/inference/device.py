"""Device choice and resources: is CUDA usable (and why not), CPU threads, GPU memory.

The reasons are meant for users: the Slicer module's GPU self-check and ``gasa-segment --device`` show them.
"""

from __future__ import annotations

import gc
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch

from GASACore.errors import GASAError

__all__ = [
    "accumulation_fits",
    "arch_supported",
    "available_cpus",
    "cpu_threads",
    "cuda_unusable_reason",
    "free_cuda_memory",
    "resolve_num_threads",
    "select_device",
]

logger = logging.getLogger(__name__)

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


def cuda_unusable_reason(index: int = 0) -> str | None:
    """Why CUDA device ``index`` cannot run this torch build, or ``None`` when it can.

    Checks, in order: a CUDA build of torch, a visible device, the device's compute capability against the
    build's architectures, and a tiny computation on the device.

    Args:
        index: CUDA device ordinal.

    Returns:
        ``None`` when usable; otherwise a one-line reason such as ``"torch was built without CUDA"``.
    """
    if not torch.backends.cuda.is_built():
        return f"torch was built without CUDA (torch {torch.__version__})"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        return f"no CUDA device visible{hint}: is an NVIDIA GPU present and its driver installed?"
    if not 0 <= index < count:
        return f"CUDA device {index} was requested but only {count} device(s) are visible"
    archs = torch.cuda.get_arch_list()
    if archs and not arch_supported(torch.cuda.get_device_capability(index), archs):
        return (
            f"{_device_label(index)} is not supported by this torch build (torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}): supported archs {' '.join(archs)}"
        )
    return _probe(index)


def _probe(index: int) -> str | None:
    """Run a tiny computation on CUDA device ``index``; the first line of the error when it fails."""
    try:
        probe = torch.ones(8, device=f"cuda:{index}")
        float((probe * 2).sum().item())
    except RuntimeError as err:  # a failed probe (driver/kernel image errors), not an out-of-memory recovery
        return f"{_device_label(index)} failed a test computation: {(str(err).splitlines() or [''])[0]}"
    return None


def select_device(requested: str) -> tuple[torch.device, str]:
    """Resolve a device request to a usable device and say why.

    Args:
        requested: ``"auto"`` (CUDA when usable, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        ``(device, reason)``; ``reason`` is human-readable, e.g. ``"CUDA not usable (torch was built without
        CUDA ...); using the CPU"``.

    Raises:
        ValueError: ``requested`` is none of the accepted strings.
        GASAError: CUDA was requested explicitly but is not usable; the message gives the reason.
    """
    text = str(requested).strip().lower()
    if text == "cpu":
        return torch.device("cpu"), "the CPU was requested"
    if text == "auto":
        reason = cuda_unusable_reason(0)
        if reason is None:
            return torch.device("cuda", 0), f"{_device_label(0)} is usable"
        return torch.device("cpu"), f"CUDA not usable ({reason}); using the CPU"
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {requested!r}")
    index = int(match.group(1) or 0)
    reason = cuda_unusable_reason(index)
    if reason is not None:
        raise GASAError(f"device {requested!r} was requested but CUDA is not usable: {reason}")
    return torch.device("cuda", index), f"{_device_label(index)} was requested and is usable"


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
