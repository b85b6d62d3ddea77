"""OpenMP settings for CPU inference, applied before torch is imported. Imports neither torch nor numpy.

PyTorch's CPU kernels run on OpenMP (GNU libgomp in the pip wheels). By default a libgomp thread that
reaches a barrier spins for a while before it sleeps. When another program keeps a core busy, the spinning
thread takes CPU time from the thread it waits for, and a 2-thread forward pass of a small network becomes
~5x slower than with 1 thread (``bench/cpu_conv_bench.py``, threads section). ``OMP_WAIT_POLICY=PASSIVE``
makes waiting threads sleep at once: measured 0.9 s -> 0.2 s per window with 2 threads on a busy machine.
OpenMP reads its environment once, when torch loads it, so this must run first: the CLI calls
:func:`apply_openmp_defaults` before its first torch import. Library users set the variables themselves.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping

__all__ = ["OPENMP_DEFAULTS", "USER_WAIT_SETTINGS", "apply_openmp_defaults", "openmp_defaults"]

logger = logging.getLogger(__name__)

#: What the CLI sets when the user has not chosen a wait policy.
OPENMP_DEFAULTS: Mapping[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}
#: Variables by which a user already chose how OpenMP threads wait (libgomp, Intel/LLVM OpenMP).
USER_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "KMP_LIBRARY")


def openmp_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to ``environ``: :data:`OPENMP_DEFAULTS` unless the user chose a wait policy.

    Examples:
        >>> openmp_defaults({})
        {'OMP_WAIT_POLICY': 'PASSIVE'}
        >>> openmp_defaults({"GOMP_SPINCOUNT": "10000"})  # the user's own choice stays
        {}
    """
    if any(name in environ for name in USER_WAIT_SETTINGS):
        return {}
    return dict(OPENMP_DEFAULTS)


def apply_openmp_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Add :func:`openmp_defaults` to ``environ`` (default ``os.environ``) while torch is not imported yet.

    Returns:
        What was set; ``{}`` when the user chose a wait policy, or when torch is already imported (then
        setting it would have no effect, which is logged).
    """
    target = os.environ if environ is None else environ
    wanted = openmp_defaults(target)
    if wanted and "torch" in sys.modules:
        logger.debug("torch is already imported: OpenMP keeps its wait policy (%s not applied)", wanted)
        return {}
    target.update(wanted)
    return wanted
