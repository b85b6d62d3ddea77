"""Which process of a cohort run this is, which cases and which device it takes, and how ranks meet at the end.

``torchrun --nproc_per_node=N [--nnodes ...] -m GASACore.cli INPUT_DIR -o OUT_DIR -m MODEL`` starts N processes
per node and tells each its place through the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). Each
rank segments its own shard of the cases (:func:`shard`) on its own device (:func:`select_rank_device`: one
GPU per rank, ``cuda:LOCAL_RANK``, or the CPU). The ranks exchange nothing but the summary rows at the end
(:class:`RankGroup`, on gloo: a few kilobytes, so the GPUs never take part). Without torchrun the same code
runs with world size 1 and no process group.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from GASACore.errors import GASAError
from GASACore.options import Device, DeviceKind

__all__ = ["GATHER_TIMEOUT", "RankGroup", "RankInfo", "rank_request", "select_rank_device", "shard"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: How long a rank that finished its shard waits for the slowest rank at the final gather. Shards can end
#: hours apart (a resumed run whose done cases are not spread evenly), so this is long; a rank that dies
#: makes torchrun stop the others long before.
GATHER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class RankInfo:
    """This process's place in the run.

    Attributes:
        rank: global rank, ``0 <= rank < world_size`` (``RANK``).
        world_size: number of processes on all nodes (``WORLD_SIZE``).
        local_rank: rank on this node (``LOCAL_RANK``), the GPU ordinal this rank uses.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        for name in ("rank", "world_size", "local_rank"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.world_size < 1 or self.rank >= self.world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {self.rank} of world size {self.world_size}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RankInfo:
        """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by torchrun); absent: a single process.

        Raises:
            GASAError: a variable that is not a non-negative integer, or a rank outside the world.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", None)):
            text = environ.get(name)
            if text is None or text.strip() == "":
                values[name] = default if default is not None else values["RANK"]
                continue
            try:
                values[name] = int(text)
            except ValueError:
                raise GASAError(
                    f"environment variable {name} must be an integer (as torchrun sets it), got {text!r}"
                ) from None
        try:
            return cls(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
        except ValueError as err:
            raise GASAError(f"RANK / WORLD_SIZE / LOCAL_RANK from the environment do not fit together: {err}") from err

    @property
    def distributed(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1

    @property
    def label(self) -> str:
        """``"rank 1/4"``: for log lines; empty for a single process."""
        return f"rank {self.rank}/{self.world_size}" if self.distributed else ""


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The items rank ``rank`` of ``world_size`` takes: every ``world_size``-th, starting at ``rank``.

    Round robin over the (sorted) case list: every rank derives the same split from the same folder without
    talking to the others, the shards differ in length by at most one, and neighbouring cases (often alike in
    size) go to different ranks. A restarted run gets the same split, so each rank finds its own finished
    outputs again.

    Example::

        >>> shard(["a", "b", "c", "d", "e"], 0, 2), shard(["a", "b", "c", "d", "e"], 1, 2)
        (['a', 'c', 'e'], ['b', 'd'])
        >>> shard(["a", "b"], 2, 3)
        []

    Raises:
        ValueError: ``world_size < 1`` or ``rank`` outside ``[0, world_size)``.
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in [0, {world_size}), got {rank!r}")
    return list(items[rank::world_size])


def rank_request(request: Device, info: RankInfo) -> Device:
    """The device request of one rank: under torchrun, ``cuda`` means ``cuda:LOCAL_RANK`` (one GPU per rank).

    ``auto`` and ``cpu`` stay as they are (:func:`select_rank_device` turns ``auto`` into this rank's GPU);
    an explicit ``cuda:N`` is the user's choice and is kept.

    Example::

        >>> str(rank_request(Device.parse("cuda"), RankInfo(rank=3, world_size=4, local_rank=1)))
        'cuda:1'
    """
    if info.distributed and request.kind is DeviceKind.CUDA and request.index is None:
        return Device(DeviceKind.CUDA, info.local_rank)
    return request


def select_rank_device(request: Device | str, info: RankInfo) -> Any:
    """Resolve this rank's device once (a :class:`~GASACore.inference.ResolvedDevice`) and make it current.

    A single process resolves ``request`` as :func:`~GASACore.inference.select_device` does. Under torchrun
    ``auto`` is ``cuda:LOCAL_RANK`` when that GPU is usable, else the CPU; ``cuda`` is ``cuda:LOCAL_RANK``.

    Raises:
        GASAError: CUDA requested explicitly but not usable on this rank.
    """
    import torch

    from GASACore.inference import ResolvedDevice, cuda_unusable_reason, select_device

    request = rank_request(Device.parse(request), info)
    if info.distributed and request.kind is DeviceKind.AUTO:
        why_not = cuda_unusable_reason(info.local_rank)
        if why_not is None:
            resolved = ResolvedDevice(torch.device("cuda", info.local_rank), f"{info.label}: its GPU is usable")
        else:
            resolved = ResolvedDevice(torch.device("cpu"), f"{info.label}: CUDA not usable ({why_not}); using the CPU")
    else:
        resolved = select_device(request)
    if resolved.device.type == "cuda":
        torch.cuda.set_device(resolved.device)
    return resolved


class RankGroup:
    """The ranks of one run, joined on gloo for the final exchange of summary rows (world size 1: no group).

    Use as a context manager: joining happens on entry (so a broken rendezvous fails before any work), and the
    group is left on exit.
    """

    def __init__(self, info: RankInfo, timeout: timedelta = GATHER_TIMEOUT) -> None:
        self.info = info
        self._timeout = timeout
        self._joined = False

    def __enter__(self) -> RankGroup:
        if not self.info.distributed:
            return self
        import torch.distributed as dist

        if not dist.is_available():
            raise GASAError("torch.distributed is not available in this torch build; expected it for a torchrun run")
        if not dist.is_initialized():
            for name in ("MASTER_ADDR", "MASTER_PORT"):
                if name not in os.environ:
                    raise GASAError(f"{name} is not set; start a multi-process run with torchrun, which sets it")
            dist.init_process_group("gloo", rank=self.info.rank, world_size=self.info.world_size, timeout=self._timeout)
            self._joined = True
        logger.info("%s joined the process group (gloo)", self.info.label)
        return self

    def all_gather(self, value: T) -> list[T]:
        """Every rank's ``value`` (picklable), in rank order; a single process gets ``[value]``."""
        if not self.info.distributed:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.info.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def __exit__(self, *exc: object) -> None:
        if self._joined:
            import torch.distributed as dist

            dist.destroy_process_group()
            self._joined = False
