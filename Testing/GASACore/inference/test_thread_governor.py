"""The thread rule: worked examples, the load arithmetic on real /proc/stat text, and the governor's decisions
with a sampler that replays recorded counters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from GASACore.inference.thread_governor import (
    MIN_VOXELS_PER_THREAD,
    CpuSample,
    ThreadGovernor,
    busy_cpus_of_others,
    cpu_thread_count,
    machine_busy_seconds,
    openmp_waits_passively,
    sample_cpu,
)

DEMO_WINDOW = 48 * 40 * 48


@pytest.mark.parametrize(
    ("voxels", "cpus", "others", "expected"),
    [
        (DEMO_WINDOW, 2, 0.0, 2),  # idle 2-core machine: both cores
        (DEMO_WINDOW, 2, 0.2, 2),  # a little background load leaves a core free
        (DEMO_WINDOW, 2, 0.3, 1),  # more than a quarter of a core taken: one thread
        (DEMO_WINDOW, 2, 0.9, 1),  # another job keeps a core busy
        (DEMO_WINDOW, 2, 5.0, 1),  # overloaded: still one
        (DEMO_WINDOW, 16, 2.0, 14),
        (16 * 32 * 32, 16, 2.0, 4),  # a small window: 16384 voxels, 4096 per thread
        (MIN_VOXELS_PER_THREAD - 1, 8, 0.0, 1),
        (128 * 112 * 128, 1, 0.0, 1),
    ],
)
def test_thread_count(voxels: int, cpus: int, others: float, expected: int) -> None:
    assert cpu_thread_count(voxels, cpus=cpus, others_busy=others) == expected


def test_thread_count_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match=r"window_voxels and cpus must be >= 1 and others_busy >= 0, got 0, 2, 0\.0"):
        cpu_thread_count(0, cpus=2)
    with pytest.raises(ValueError, match=r"got 10, 2, -1"):
        cpu_thread_count(10, cpus=2, others_busy=-1)


def test_busy_cpus_of_others() -> None:
    assert busy_cpus_of_others(CpuSample(10.0, 100.0, 5.0), CpuSample(12.0, 103.0, 6.2)) == pytest.approx(0.9)
    assert busy_cpus_of_others(CpuSample(10.0, 100.0, 5.0), CpuSample(11.0, 101.0, 6.0)) == 0.0  # only us
    assert busy_cpus_of_others(CpuSample(10.0, 100.0, 5.0), CpuSample(10.0, 101.0, 5.0)) == 0.0  # no time


def test_machine_busy_seconds_from_proc_stat_text() -> None:
    text = "cpu  4705 356 584 3699176 23 0 12 100 0 0\ncpu0 2000 100 300 1849000 10 0 6 50 0 0\n"
    # user + nice + system + irq + softirq = 4705 + 356 + 584 + 0 + 12 ticks; idle, iowait and steal excluded
    assert machine_busy_seconds(text, 100.0) == pytest.approx((4705 + 356 + 584 + 12) / 100)
    with pytest.raises(ValueError, match="unexpected /proc/stat first line"):
        machine_busy_seconds("intr 1 2 3\n", 100.0)


def test_sample_cpu_reads_this_machine(tmp_path: Path) -> None:
    sample = sample_cpu()
    if Path("/proc/stat").is_file():
        assert sample is not None and sample.machine_busy > 0 and sample.own > 0
    assert sample_cpu(tmp_path / "missing") is None


class _Replay:
    """Returns recorded samples one after another (a stand-in for the clock and /proc/stat)."""

    def __init__(self, *samples: CpuSample | None) -> None:
        self.samples = list(samples)

    def __call__(self) -> CpuSample | None:
        return self.samples.pop(0)


def test_governor_follows_the_load_of_other_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("GASACore.inference.thread_governor.os.getloadavg", lambda: (1.1, 1.0, 1.0))  # only us
    replay = _Replay(
        CpuSample(0.0, 0.0, 0.0),
        CpuSample(1.0, 2.0, 1.9),  # 1 s later, under the interval: keep the first answer
        CpuSample(3.0, 6.0, 3.8),  # others used (6 - 3.8) / 3 = 0.73 CPUs: one thread
        CpuSample(6.0, 12.0, 9.7),  # others used (6 - 5.9) / 3 = 0.03: two threads again
    )
    governor = ThreadGovernor(DEMO_WINDOW, cpus=2, interval=2.0, sampler=replay, load_aware=True)
    before = torch.get_num_threads()
    try:
        assert [governor.update() for _ in range(4)] == [2, 2, 1, 2]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_governor_keeps_an_explicit_request_and_uses_the_load_average_without_proc_stat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ThreadGovernor(DEMO_WINDOW, requested=3, cpus=2).decide() == 3
    monkeypatch.setattr("GASACore.inference.thread_governor.os.getloadavg", lambda: (2.4, 2.0, 2.0))
    assert ThreadGovernor(DEMO_WINDOW, cpus=2, sampler=lambda: None, load_aware=True).decide() == 1  # others 1.4
    assert ThreadGovernor(DEMO_WINDOW, cpus=2, sampler=lambda: None, load_aware=False).decide() == 2
    with pytest.raises(ValueError, match="requested threads must be >= 1 or None, got 0"):
        ThreadGovernor(DEMO_WINDOW, requested=0)


def test_openmp_wait_policy_from_the_environment() -> None:
    assert openmp_waits_passively({"OMP_WAIT_POLICY": " passive "})
    assert openmp_waits_passively({"GOMP_SPINCOUNT": "0"})
    assert not openmp_waits_passively({"OMP_WAIT_POLICY": "ACTIVE"})
    assert not openmp_waits_passively({})
