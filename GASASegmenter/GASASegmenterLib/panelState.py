"""What the panel's Segment button says and allows, from the state of the run, the installation and the model.

A pure function of plain values (no qt, no process): the panel (``widget.py``) gathers the states and
shows the answer, and the rules are tested without the application. The order of the rules is what the
user sees: a running installation or run first (the button is its Cancel), then what is missing to start
(an input, a model), then why the model cannot be used, then what Segment will do first (download the
model, install the engine's packages).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .catalog import ModelEntry, whyNotRunnable
from .dependencies import InstallState
from .engineProcessJob import JobState

__all__ = ["ButtonState", "segmentButtonState"]


@dataclass(frozen=True)
class ButtonState:
    """The Segment button: its text, whether it can be clicked, and its tooltip (the reason when it cannot)."""

    text: str
    enabled: bool
    tip: str

    @property
    def busy(self) -> bool:
        """An installation or a run goes on (the panel's other controls wait)."""
        return self.text != "Segment"


def segmentButtonState(
    *,
    installState: InstallState | None,
    jobState: JobState | None,
    jobStage: str,
    hasInput: bool,
    entry: ModelEntry | None,
    offline: bool,
    modelsBusy: bool,
    missingPackages: Sequence[str],
    readError: str | None,
    described: bool,
) -> ButtonState:
    """The Segment button for the panel's state.

    Args:
        installState: the package installation's state (``None``: none was started).
        jobState, jobStage: the latest run's state and stage (``download``, ``read``, ``load`` ...); ``None``
            and ``""`` before the first run.
        hasInput: an input volume is selected.
        entry: the selected model (``None``: none).
        offline: the Offline option.
        modelsBusy: the model row downloads or imports a model on its own (its *Download* or *Import*).
        missingPackages: the engine's Python packages not installed yet.
        readError: why the engine could not read the selected (installed) model, ``None`` when it could.
        described: the engine's description of the selected model has been read.

    Example::

        >>> segmentButtonState(installState=None, jobState=JobState.RUNNING, jobStage="download", hasInput=True,
        ...     entry=None, offline=False, modelsBusy=False, missingPackages=(), readError=None, described=False).text
        'Cancel'
    """
    if installState in (InstallState.RUNNING, InstallState.STOPPING):
        stopping = installState == InstallState.STOPPING
        return ButtonState(
            "Stopping..." if stopping else "Cancel installation", not stopping, "Stop installing packages"
        )
    if jobState == JobState.CANCELLING:
        return ButtonState("Stopping...", False, "Stopping the engine")
    if jobState == JobState.RUNNING:
        if jobStage == "download":
            return ButtonState("Cancel", True, "Stop the download; what was downloaded is kept and resumed next time")
        return ButtonState("Cancel", True, "Stop the segmentation; the scene stays as it was")
    if not hasInput:
        return ButtonState("Segment", False, "Select an input volume")
    if entry is None:
        return ButtonState("Segment", False, "Select a model, or import one")
    if modelsBusy:
        return ButtonState("Segment", False, "Wait for the model's download or import")
    problem = whyNotRunnable(entry, offline=offline)
    if problem:
        return ButtonState("Segment", False, problem)
    if not entry.available:
        return ButtonState("Segment", True, f"Downloads {entry.name} first (its licence is shown), then segments")
    if missingPackages:
        return ButtonState("Segment", True, f"Installs {', '.join(missingPackages)} first (asks), then segments")
    if readError is not None:
        return ButtonState("Segment", False, f"This model cannot be used: {readError}")
    if not described:
        return ButtonState("Segment", False, "Reading the model...")
    return ButtonState("Segment", True, "Segment the input volume")
