"""The CPU side of one sliding-window prediction: the backend per fold and the thread rule per window batch.

:func:`~GASACore.inference.predict_sliding_window` makes one :class:`CpuSession` when it runs on the CPU. After
each fold's weights are loaded, :meth:`CpuSession.prepare` turns the network into a
:class:`~GASACore.inference.cpu_runtime.CpuForward` for the configured backend (OpenVINO converts the weights,
so it is per fold; oneDNN costs nothing to prepare). Before each window batch, :meth:`CpuSession.before_batch`
lets the :class:`~GASACore.inference.thread_governor.ThreadGovernor` set torch's thread count when the count is
automatic (no ``num_threads``, no ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``). What ran, and why, goes into a
:class:`~GASACore.inference.cpu_runtime.ForwardRecord` for the run's report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from GASACore.inference.cpu_runtime import CpuBackend, CpuForward, ForwardRecord, prepare_cpu_forward
from GASACore.inference.device import resolve_num_threads
from GASACore.inference.thread_governor import ThreadGovernor

__all__ = ["CpuSession"]

logger = logging.getLogger(__name__)


class CpuSession:
    """Backend and threads of one CPU prediction.

    Example::

        session = CpuSession("auto", window_shape=(1, 1, 48, 40, 48), num_threads=None)
        for state in folds:
            network.load_state_dict(state)
            forward = session.prepare(network)     # CpuForward: oneDNN, eager or OpenVINO
            for batch in batches:
                session.before_batch()             # thread rule (automatic thread count only)
                logits = forward(batch)
        session.record.backend                     # "onednn"

    Args:
        backend: the requested :class:`~GASACore.inference.cpu_runtime.CpuBackend` (``auto`` included).
        window_shape: ``(B, C, X, Y, Z)`` of a full window batch.
        num_threads: the configured thread count; ``None``: automatic (then the governor decides, unless the
            user set ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``).
        record: where to note what ran; default a new one (``session.record``).
    """

    def __init__(
        self,
        backend: CpuBackend | str,
        *,
        window_shape: Sequence[int],
        num_threads: int | None,
        record: ForwardRecord | None = None,
    ) -> None:
        self.backend = backend
        self.window_shape = tuple(int(s) for s in window_shape)
        self.record = record if record is not None else ForwardRecord()
        self.record.device = "cpu"
        automatic = num_threads is None and resolve_num_threads(None) is not None
        voxels = self.window_shape[0] * math.prod(self.window_shape[2:])
        self.governor = ThreadGovernor(voxels) if automatic else None
        self.forward: CpuForward | None = None

    def prepare(self, network: nn.Module) -> CpuForward:
        """The forward pass for ``network`` with its current weights (call after every fold's weights load)."""
        self.forward = prepare_cpu_forward(
            network, input_shape=self.window_shape, backend=self.backend, num_threads=torch.get_num_threads()
        )
        self.record.note(self.forward)
        return self.forward

    def before_batch(self) -> None:
        """Apply the thread rule (automatic thread count only) and note the count."""
        if self.governor is not None:
            self.governor.update()
        self.record.threads = torch.get_num_threads()

    def __call__(self, x: torch.Tensor) -> Any:
        if self.forward is None:
            raise RuntimeError("CpuSession.prepare(network) must run before the first forward pass")
        output = self.forward(x)
        self.record.note(self.forward)  # a fallback during the call shows at once
        return output
