"""Which CPU backend ``auto`` stands for on this machine: bfloat16 convolutions only where the CPU has AMX.

bfloat16 convolutions pay only where the CPU multiplies bfloat16 matrices natively: Intel's AMX tiles (Xeon
Sapphire Rapids and later). Measured on such a CPU (``bench/cpu_conv_bench.py``, demo model, 64^3 window, one
thread): float32 oneDNN 0.195 s, bfloat16 oneDNN 0.10 s. On AVX-512 CPUs without AMX oneDNN still runs
bfloat16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is true on every AVX-512 CPU), by conversion
to float32 or with AVX512-BF16 dot products, which has not been measured to pay here, so ``auto`` keeps float32
there, as on every ARM CPU.

The test: ``torch.cpu.get_capabilities()`` (PyTorch's cpuinfo, which reads CPUID on Linux, Windows and macOS
alike) reports ``amx_tile`` and ``amx_bf16``, *and* ``torch._C._cpu._init_amx()`` succeeds: on Linux the kernel
must grant a process the AMX tile state (``arch_prctl(ARCH_REQ_XCOMP_PERM)``; a kernel older than 5.16 or a
hypervisor that hides the state refuses, and then oneDNN cannot use AMX either); elsewhere it reports the
CPU's support. Apple Silicon and other ARM CPUs report no AMX in this sense (Apple's own matrix unit is not
reachable by oneDNN). ``/proc/cpuinfo``'s ``flags`` (Linux only) name the same CPUID bits:
:func:`amx_bf16_in_cpuinfo_flags` reads them, for the check that both agree.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from GASACore.options import CpuBackend

__all__ = [
    "CpuCapability",
    "amx_bf16_in_capabilities",
    "amx_bf16_in_cpuinfo_flags",
    "auto_cpu_backend",
    "detect_cpu_capability",
]

logger = logging.getLogger(__name__)

#: Argmax agreement of ``onednn-bf16`` with ``onednn`` measured on the demo model (whole volumes of two real CTs).
BF16_AGREEMENT_NOTE = "argmax agreement with float32 >= 99.9% measured on real CT"


@dataclass(frozen=True)
class CpuCapability:
    """What this CPU and torch build offer the CPU backends.

    Attributes:
        onednn: torch was built with oneDNN (``torch.backends.mkldnn.is_available()``).
        onednn_bf16: oneDNN runs bfloat16 convolutions here (``torch.ops.mkldnn._is_mkldnn_bf16_supported()``;
            true on every AVX-512 CPU, natively or not).
        amx_bf16: the CPU has AMX tiles with bfloat16 and this process may use them (see the module doc).
    """

    onednn: bool
    onednn_bf16: bool
    amx_bf16: bool


def amx_bf16_in_capabilities(capabilities: Mapping[str, Any], *, tiles_enabled: bool) -> bool:
    """Whether ``torch.cpu.get_capabilities()``-style ``capabilities`` name AMX bf16 tiles, and the OS enabled them.

    Example: ``amx_bf16_in_capabilities({"amx_tile": True, "amx_bf16": True}, tiles_enabled=True)`` is true;
    with ``tiles_enabled=False`` (the kernel refused the tile state) it is false.
    """
    return bool(capabilities.get("amx_tile", False)) and bool(capabilities.get("amx_bf16", False)) and tiles_enabled


def amx_bf16_in_cpuinfo_flags(flags: str) -> bool:
    """Whether a ``/proc/cpuinfo`` ``flags`` line (Linux) names the AMX tile and bf16 features.

    Example: ``amx_bf16_in_cpuinfo_flags("fpu avx512_bf16 amx_bf16 amx_tile")`` is true;
    ``amx_bf16_in_cpuinfo_flags("fpu avx512f avx512_bf16")`` (AVX512-BF16 without AMX) is false.
    """
    words = set(flags.replace("flags", " ").replace(":", " ").split())
    return {"amx_tile", "amx_bf16"} <= words


def _tiles_enabled() -> bool:
    init = getattr(getattr(torch._C, "_cpu", None), "_init_amx", None)
    if init is None:  # a torch without the query: trust CPUID (oneDNN requests the tiles itself)
        return True
    try:
        return bool(init())
    except Exception as err:  # an unexpected failure of the query: no AMX then
        logger.debug("torch._C._cpu._init_amx() failed: %s", err)
        return False


@functools.cache
def detect_cpu_capability() -> CpuCapability:
    """This machine's :class:`CpuCapability` (detected once per process)."""
    onednn = bool(torch.backends.mkldnn.is_available())
    try:
        onednn_bf16 = onednn and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn_bf16 = False
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    capabilities: Mapping[str, Any] = get_capabilities() if get_capabilities is not None else {}
    amx = amx_bf16_in_capabilities(capabilities, tiles_enabled=True) and _tiles_enabled()
    return CpuCapability(onednn=onednn, onednn_bf16=onednn_bf16, amx_bf16=amx)


def auto_cpu_backend(capability: CpuCapability) -> tuple[CpuBackend, str]:
    """The backend ``auto`` stands for given ``capability``, with the reason the run reports.

    Examples: with AMX bf16 tiles and oneDNN bf16 kernels, ``CpuBackend.ONEDNN_BF16``; with oneDNN only,
    ``CpuBackend.ONEDNN``; without oneDNN, ``CpuBackend.EAGER``.
    """
    if capability.onednn and capability.onednn_bf16 and capability.amx_bf16:
        return CpuBackend.ONEDNN_BF16, f"auto: the CPU has AMX bf16 units: bf16 convolutions, {BF16_AGREEMENT_NOTE}"
    if capability.onednn:
        why = "no AMX bf16 units on this CPU" if not capability.amx_bf16 else "oneDNN has no bf16 kernels here"
        return CpuBackend.ONEDNN, f"auto: every 3D convolution on oneDNN in float32 ({why})"
    return CpuBackend.EAGER, "auto: this torch build has no oneDNN"
