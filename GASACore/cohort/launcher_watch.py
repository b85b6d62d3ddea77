"""torchrun workers stop when their launcher dies.

torchrun's agent starts every worker as the leader of its own session (``start_new_session=True``), so a
signal to the agent's process group, or the agent being killed outright (``kill -9``, an out-of-memory kill,
a batch system ending the job step), leaves the workers running, holding GPUs and output locks. Each worker
therefore asks Linux to send it ``SIGTERM`` when its parent exits (``prctl(PR_SET_PDEATHSIG)``); the CLI
handles ``SIGTERM`` as a cancel, so the worker stops between window batches and releases its output locks.
Elsewhere (no ``prctl``) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections.abc import Mapping

__all__ = ["PR_SET_PDEATHSIG", "die_with_parent", "under_torchrun"]

logger = logging.getLogger(__name__)

#: ``prctl`` option: the signal this process gets when its parent exits (``<linux/prctl.h>``).
PR_SET_PDEATHSIG = 1


def under_torchrun(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process is a torchrun (torch elastic) worker: it has ``TORCHELASTIC_RUN_ID``.

    Examples: ``under_torchrun({"TORCHELASTIC_RUN_ID": "none"})`` is ``True``; ``under_torchrun({})`` ``False``.
    """
    return "TORCHELASTIC_RUN_ID" in (os.environ if environ is None else environ)


def die_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Have ``signum`` sent to this process when its parent exits (Linux); ``False`` where that is not possible.

    When the parent has already gone (between this process's start and the call), ``signum`` is raised now.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        done = libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        done = False
    if not done:
        logger.debug("prctl(PR_SET_PDEATHSIG) not available: this worker outlives a killed launcher")
        return False
    if os.getppid() != parent:  # re-parented already: the launcher died before prctl
        os.kill(os.getpid(), signum)
    return True
