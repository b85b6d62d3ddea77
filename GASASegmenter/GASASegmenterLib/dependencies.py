"""The engine's Python packages inside Slicer: checked, and installed on first use after asking.

Nothing is installed without the user's yes (:func:`installQuestion` is what to ask). The installation then
runs in the background, one ``PythonSlicer -m pip`` process after the other, through the same runners as
the engine (:class:`InstallJob`), so the application never freezes on pip's downloads or retries; pip
gets a short network timeout and one retry, so an offline machine hears so within seconds. A failure ends
in one message that says which package failed, pip's own reason, and what to do (connect, or install
offline as the README describes).

torch comes from light-the-torch (what Slicer's PyTorch extension uses), which picks the build that fits the
GPU and driver; the rest from pip, with ``--no-deps`` where a package would drag in others
(dynamic-network-architectures declares timm -> torchvision). Packages Slicer ships (numpy, SimpleITK) are
never reinstalled, so nothing Slicer relies on is downgraded. Once installed, everything works offline.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .backgroundProcess import BackgroundProcess
from .processRunner import ProcessRunner

__all__ = [
    "PACKAGES",
    "PIP_OPTIONS",
    "InstallJob",
    "InstallState",
    "InstallStep",
    "Package",
    "installQuestion",
    "installSteps",
    "missingPackages",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Package:
    """One requirement: the module to import, the pip requirement, and whether to install without deps."""

    module: str
    requirement: str
    noDeps: bool = False


#: What GASACore needs besides torch, numpy, scipy and SimpleITK (which light-the-torch and Slicer provide).
PACKAGES: tuple[Package, ...] = (
    Package("safetensors", "safetensors>=0.4"),
    Package("tqdm", "tqdm>=4.60"),
    Package("einops", "einops"),
    Package("nibabel", "nibabel>=5"),
    Package("dynamic_network_architectures", "dynamic-network-architectures>=0.4.4,<0.5", noDeps=True),
)
#: Slicer's own packages: never installed by the module (a missing one means a broken Slicer).
SLICER_PACKAGES = ("numpy", "scipy", "SimpleITK")
#: pip options of every step: no prompts, no self-update check, a short timeout and one retry.
PIP_OPTIONS = (
    "--disable-pip-version-check",
    "--no-input",
    "--progress-bar",
    "off",
    "--timeout",
    "15",
    "--retries",
    "1",
)
#: Words in pip's output that mean the package index could not be reached.
OFFLINE_SIGNS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "Read timed out",
    "ProxyError",
    "No matching distribution found",
)
OFFLINE_ADVICE = (
    "The package index could not be reached: connect to the network (set a proxy if one is needed) and try "
    "again, or install the packages offline as the module's README describes (Offline installation)."
)

OTHER_ADVICE = "The log above has pip's full output; the module's README also describes an offline install."


def _present(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missingPackages() -> list[str]:
    """Module names that cannot be imported now (``torch`` included); imports none of them."""
    importlib.invalidate_caches()
    missing = [] if _present("torch") else ["torch"]
    missing += [p.module for p in PACKAGES if not _present(p.module)]
    missing += [m for m in SLICER_PACKAGES if not _present(m)]
    return missing


def installQuestion(missing: Sequence[str]) -> str:
    """What to ask before installing ``missing``."""
    size = " This downloads about 1-3 GB for torch." if "torch" in missing else ""
    return (
        "GASA Segmenter needs these Python packages, which are not installed yet: "
        + ", ".join(missing)
        + f".\nInstall them now?{size} It needs a network connection once; Slicer stays usable meanwhile."
    )


@dataclass(frozen=True)
class InstallStep:
    """One background command: what it installs (for messages) and the command."""

    what: str
    command: tuple[str, ...]


def installSteps(missing: Sequence[str], python: str) -> list[InstallStep]:
    """The commands that install ``missing`` with ``python`` (Slicer's ``PythonSlicer``), in order.

    Raises:
        RuntimeError: one of Slicer's own packages is missing (reinstalling Slicer is the fix, not pip).
    """
    broken = [m for m in SLICER_PACKAGES if m in missing]
    if broken:
        raise RuntimeError(
            f"Slicer's own Python packages {', '.join(broken)} are missing: this Slicer installation is damaged; "
            "reinstall 3D Slicer (the module never replaces Slicer's packages)"
        )
    pip = (python, "-m", "pip", "install", *PIP_OPTIONS)
    steps = []
    if "torch" in missing:
        if not _present("light_the_torch"):
            steps.append(InstallStep("light-the-torch", (*pip, "light-the-torch>=0.7")))
        steps.append(InstallStep("torch", (python, "-m", "light_the_torch", "install", *PIP_OPTIONS, "torch")))
    for package in PACKAGES:
        if package.module in missing:
            noDeps = ("--no-deps",) if package.noDeps else ()
            steps.append(InstallStep(package.requirement, (*pip, *noDeps, package.requirement)))
    return steps


class InstallState(str, enum.Enum):
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def _failureMessage(step: InstallStep, code: int, output: Sequence[str]) -> str:
    errors = [line.strip() for line in output if line.strip().startswith("ERROR:")]
    reason = errors[-1] if errors else next((line.strip() for line in reversed(output) if line.strip()), "")
    offline = any(sign in line for line in output for sign in OFFLINE_SIGNS)
    advice = OFFLINE_ADVICE if offline else OTHER_ADVICE
    return f"Installing {step.what} failed (exit code {code}): {reason or 'no message'}. {advice}"


class InstallJob:
    """Runs :class:`InstallStep` s one after the other in the background; :meth:`poll` from a timer.

    Attributes:
        state: an :class:`InstallState`; :attr:`finished` once succeeded, failed or cancelled.
        message: one line once finished (the failure and what to do, for failures).
    """

    def __init__(
        self,
        steps: Sequence[InstallStep],
        makeRunner: Callable[[], ProcessRunner],
        onLog: Callable[[str], None] | None = None,
    ) -> None:
        self.steps = list(steps)
        self._makeRunner = makeRunner
        self._onLog = onLog or (lambda line: None)
        self.state = InstallState.RUNNING
        self.message = ""
        self._index = -1
        self._process: BackgroundProcess | None = None
        self._output: list[str] = []
        self._next()

    @property
    def finished(self) -> bool:
        return self.state in (InstallState.SUCCEEDED, InstallState.FAILED, InstallState.CANCELLED)

    def _log(self, line: str) -> None:
        logger.info("%s", line)
        self._onLog(line)

    def _next(self) -> None:
        self._index += 1
        if self._index == len(self.steps):
            importlib.invalidate_caches()
            self.state = InstallState.SUCCEEDED
            self.message = "the Python packages GASA Segmenter needs are installed"
            self._log(self.message)
            return
        step = self.steps[self._index]
        self._log(f"installing {step.what} ({self._index + 1} of {len(self.steps)})...")
        self._output = []
        self._process = BackgroundProcess(self._makeRunner(), step.command)

    def _read(self) -> None:
        assert self._process is not None
        for line in [*self._process.readLines(), *self._process.readErrorLines()]:
            self._output.append(line)
            if line.strip():
                self._log(line)

    def poll(self) -> bool:
        """Move the installation on; ``True`` once finished. Never blocks."""
        if self.finished:
            return True
        process = self._process
        assert process is not None
        if self.state == InstallState.STOPPING:
            if process.stopped():
                self.state = InstallState.CANCELLED
                self._log(self.message)
            return self.finished
        step = self.steps[self._index]
        if process.startError:
            self._fail(f"Installing {step.what} failed: could not start {step.command[0]}: {process.startError}.")
            return True
        self._read()
        code = process.exitCode()
        if code is None:
            return False
        self._read()
        if code != 0:
            self._fail(_failureMessage(step, code, self._output))
            return True
        self._next()
        return self.finished

    def _fail(self, message: str) -> None:
        self.state = InstallState.FAILED
        self.message = message
        self._log(message)

    def abandon(self) -> None:
        """Kill the running step at once (the module is closing); never waits."""
        if not self.finished and self._process is not None:
            self._process.killNow()
            self.state = InstallState.CANCELLED
            self.message = "installation stopped: the module was closed"

    def cancel(self) -> None:
        """Stop the running step (non-blocking: poll until :attr:`finished`); later steps do not run."""
        if self.state == InstallState.RUNNING and self._process is not None:
            self.state = InstallState.STOPPING
            self.message = "installation cancelled; run Segment again to install the rest"
            self._process.stop()
