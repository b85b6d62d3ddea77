"""How many CPU threads a window's forward pass should use, given the cores and what other programs use.

OpenMP splits every operator evenly over its threads and waits for the slowest. When another program keeps
a core busy, the thread on that core runs a fraction of the time and the whole forward pass waits for it:
measured on 2 shared cores, the demo model's window took 0.17 s with 1 thread and 0.9 s with 2
(``bench/cpu_conv_bench.py``, threads section; 0.2 s with 2 threads and ``OMP_WAIT_POLICY=PASSIVE``). On idle
cores, 2 threads are ~1.7x faster than 1 (issue 13: 83 s vs 143 s). So the rule gives a window as many
threads as there are idle CPUs, and :class:`ThreadGovernor` re-measures the other programs' load from
``/proc/stat`` while the windows run (Linux; elsewhere the 1-minute load average). With OpenMP waiting
passively (``OMP_WAIT_POLICY=PASSIVE``, which ``gasa-segment`` sets) a busy core costs little (measured
0.15 s per window with 2 threads vs 0.16-0.37 s with 1): then every CPU is used whatever the load.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from GASACore.inference.device import available_cpus

__all__ = [
    "MIN_VOXELS_PER_THREAD",
    "CpuSample",
    "ThreadGovernor",
    "busy_cpus_of_others",
    "cpu_thread_count",
    "machine_busy_seconds",
    "openmp_waits_passively",
    "sample_cpu",
]

logger = logging.getLogger(__name__)

#: Below this many window voxels per thread, a second thread costs more in synchronisation than it gains.
MIN_VOXELS_PER_THREAD = 16**3
#: A CPU counts as free for one more thread when others leave at least this fraction of it idle.
FREE_FRACTION = 0.75


def cpu_thread_count(window_voxels: int, *, cpus: int, others_busy: float = 0.0) -> int:
    """Threads for one window's forward pass.

    ``min(cpus, idle CPUs, window_voxels // MIN_VOXELS_PER_THREAD)``, at least 1; a CPU is idle when other
    programs use at most a quarter of it.

    Examples:
        >>> cpu_thread_count(48 * 40 * 48, cpus=2)                    # the demo window, idle machine
        2
        >>> cpu_thread_count(48 * 40 * 48, cpus=2, others_busy=0.9)   # another program keeps a core busy
        1
        >>> cpu_thread_count(16 * 32 * 32, cpus=16, others_busy=2.0)  # small window: 16384 voxels
        4
        >>> cpu_thread_count(8 * 8 * 8, cpus=8)
        1

    Args:
        window_voxels: voxels of one window (batch x X x Y x Z).
        cpus: CPUs this process may use (:func:`~GASACore.inference.available_cpus`).
        others_busy: CPUs' worth of time other programs use now (:func:`busy_cpus_of_others`).

    Raises:
        ValueError: ``window_voxels`` or ``cpus`` below 1, or negative ``others_busy``.
    """
    if window_voxels < 1 or cpus < 1 or not others_busy >= 0:
        raise ValueError(
            f"window_voxels and cpus must be >= 1 and others_busy >= 0, got {window_voxels!r}, {cpus!r}, "
            f"{others_busy!r}"
        )
    idle = math.floor(cpus - others_busy + (1 - FREE_FRACTION))
    return max(1, min(cpus, idle, window_voxels // MIN_VOXELS_PER_THREAD))


def openmp_waits_passively(environ: Mapping[str, str] | None = None) -> bool:
    """Whether OpenMP threads sleep at once at barriers (``OMP_WAIT_POLICY=PASSIVE`` or a spin count of 0).

    Reads the environment, which is what OpenMP read when torch loaded it unless it was changed since.

    Examples: ``{"OMP_WAIT_POLICY": "passive"}`` -> ``True``; ``{"GOMP_SPINCOUNT": "0"}`` -> ``True``;
    ``{}`` -> ``False`` (libgomp spins first).
    """
    environ = os.environ if environ is None else environ
    return environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE" or environ.get("GOMP_SPINCOUNT") == "0"


@dataclass(frozen=True)
class CpuSample:
    """CPU time counters at one moment, in seconds: wall clock, all CPUs' busy time, this process's CPU time."""

    wall: float
    machine_busy: float
    own: float


def busy_cpus_of_others(before: CpuSample, after: CpuSample) -> float:
    """CPUs' worth of time that other processes used between two samples.

    Example: over 2 s of wall time the machine's CPUs were busy for 3 s together and this process used 1.2 s
    of CPU time: others kept ``(3 - 1.2) / 2 = 0.9`` CPUs busy.

        >>> busy_cpus_of_others(CpuSample(10.0, 100.0, 5.0), CpuSample(12.0, 103.0, 6.2))
        0.9

    Returns:
        A value >= 0 (0 when no wall time passed).
    """
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    others = (after.machine_busy - before.machine_busy) - (after.own - before.own)
    return round(max(0.0, others / wall), 6)


def machine_busy_seconds(stat_text: str, ticks_per_second: float) -> float:
    """Busy seconds of all CPUs from ``/proc/stat``'s first line (everything except idle and iowait)."""
    fields = stat_text.splitlines()[0].split()
    if fields[0] != "cpu" or len(fields) < 5:
        raise ValueError(f"unexpected /proc/stat first line: {stat_text.splitlines()[0]!r}")
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    steal = ticks[7] if len(ticks) > 7 else 0  # time the hypervisor gave to other machines: not ours either
    return (sum(ticks) - idle - steal) / ticks_per_second


def sample_cpu(stat: Path = Path("/proc/stat")) -> CpuSample | None:
    """The current :class:`CpuSample`, or ``None`` where ``/proc/stat`` does not exist (not Linux)."""
    try:
        text = stat.read_text()
    except OSError:
        return None
    times = os.times()
    busy = machine_busy_seconds(text, float(os.sysconf("SC_CLK_TCK")))
    return CpuSample(time.monotonic(), busy, times.user + times.system)


def _load_average_others() -> float:
    """Other programs' load from the 1-minute load average, this process counted as one busy CPU."""
    try:
        return max(0.0, os.getloadavg()[0] - 1.0)
    except OSError:
        return 0.0


class ThreadGovernor:
    """Sets torch's thread count for each window batch by :func:`cpu_thread_count`, re-measuring the load.

    The first decision uses the 1-minute load average; later ones the other processes' CPU use since the
    previous decision, at most every ``interval`` seconds. An explicit ``requested`` count is kept as is, and
    when OpenMP waits passively the load is not consulted (every CPU, see the module docstring).

    Example::

        governor = ThreadGovernor(window_voxels=48 * 40 * 48)
        for batch in batches:
            governor.update()            # torch.set_num_threads(...) when the rule changes its answer
            predict(batch)

    Args:
        window_voxels: voxels of one forward pass (batch x X x Y x Z).
        requested: a fixed thread count (the user's choice) or ``None`` for the rule.
        cpus: CPUs this process may use; default :func:`~GASACore.inference.available_cpus`.
        interval: seconds between two load measurements.
        sampler: returns a :class:`CpuSample` (or ``None`` when unavailable); default :func:`sample_cpu`.
        load_aware: follow other programs' load; default: unless :func:`openmp_waits_passively`.
    """

    def __init__(
        self,
        window_voxels: int,
        *,
        requested: int | None = None,
        cpus: int | None = None,
        interval: float = 2.0,
        sampler: Callable[[], CpuSample | None] = sample_cpu,
        load_aware: bool | None = None,
    ) -> None:
        if requested is not None and requested < 1:
            raise ValueError(f"requested threads must be >= 1 or None, got {requested!r}")
        self.window_voxels, self.requested = int(window_voxels), requested
        self.cpus = available_cpus() if cpus is None else int(cpus)
        self.interval, self._sampler = float(interval), sampler
        self.load_aware = not openmp_waits_passively() if load_aware is None else bool(load_aware)
        self._last: CpuSample | None = None
        self.threads = 0

    def decide(self) -> int:
        """The thread count for the next batch (no side effect on torch)."""
        if self.requested is not None:
            return self.requested
        if not self.load_aware:
            return cpu_thread_count(self.window_voxels, cpus=self.cpus)
        now = self._sampler()
        if self._last is None or now is None:
            others = _load_average_others()
            self._last = now
        elif now.wall - self._last.wall >= self.interval:
            others, self._last = busy_cpus_of_others(self._last, now), now
        else:
            return self.threads or cpu_thread_count(self.window_voxels, cpus=self.cpus)
        return cpu_thread_count(self.window_voxels, cpus=self.cpus, others_busy=others)

    def update(self) -> int:
        """Apply :meth:`decide` to torch (``torch.set_num_threads``) when it changed; returns the count."""
        threads = self.decide()
        if threads != self.threads:
            if self.threads:
                logger.info("CPU threads %d -> %d (other programs' load changed)", self.threads, threads)
            torch.set_num_threads(threads)
            self.threads = threads
        return threads
