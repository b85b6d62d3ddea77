"""The module panel: a thin layer over :class:`GASASegmenterLib.logic.SegmenterLogic` (application only).

Every engine interaction (downloading a model, reading its labels, the segmentation, Check GPU, importing
an archive, installing packages) runs in a background process through
:class:`~GASASegmenterLib.qtProcessRunner.QProcessRunner` and is moved on by one ``QTimer``
(:meth:`GASASegmenterWidget.onPoll`): no call on the UI thread waits for a process, and Cancel only starts
the stop (the timer finishes it). The model row (selector, import, download) is
:class:`~GASASegmenterLib.modelSelector.ModelSelector`.

Segment with a model that is not installed is one run from the user's view
(:class:`~GASASegmenterLib.modelRun.ModelRun`): the licence is shown and accepted first, then the model is
downloaded (the bar shows MB done of the total), read and used; Cancel stops whichever step runs.
"""

from __future__ import annotations

import logging
from typing import Any

import qt
import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from . import catalog, dependencies
from .dependencies import InstallJob, InstallState
from .engineQuery import EngineQuery
from .job import JobState
from .logic import pythonExecutable
from .modelRun import ModelRun
from .modelSelector import ModelSelector
from .panelState import ButtonState, segmentButtonState
from .parameterNode import GASASegmenterLogic, GASASegmenterParameterNode, segmentOptionsFrom
from .qtProcessRunner import QProcessRunner

__all__ = ["GASASegmenterWidget"]

logger = logging.getLogger(__name__)

POLL_INTERVAL_MS = 200


class GASASegmenterWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Input, model, device and options; Segment / Cancel; progress, log and the result."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: GASASegmenterLogic | None = None
        self.models: ModelSelector | None = None
        self._parameterNode: GASASegmenterParameterNode | None = None
        self._parameterNodeGuiTag = None
        self._job: ModelRun | None = None
        self._result: Any = None  # the last segmentation node a run made or filled
        self._install: InstallJob | None = None
        self._afterInstall = None
        self._missing: list[str] = []  # the engine's packages not installed yet (checked at setup and after installs)
        self._deviceCheck: EngineQuery | None = None
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self.onPoll)

    @property
    def job(self) -> ModelRun | None:
        """The latest run (downloading, reading, segmenting, stopping or finished); ``None`` before the first."""
        return self._job

    def modelDescription(self, entry: catalog.ModelEntry) -> dict[str, Any]:
        """The engine's description of a listed model, once read (:meth:`ModelSelector.description`)."""
        return self.models.description(entry)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/GASASegmenter.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = GASASegmenterLogic()
        self.models = ModelSelector(
            self.ui, self.logic, lambda: self._parameterNode, self.appendLog, self._startPolling
        )
        self.models.connect()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegmentButton)
        self.ui.checkGpuButton.connect("clicked(bool)", self.onCheckGpu)
        self.ui.openInSegmentEditorButton.connect("clicked(bool)", self.onOpenInSegmentEditor)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.updateGuiFromState)
        self._missing = dependencies.missingPackages()
        self.models.packagesMissing = bool(self._missing)
        self.initializeParameterNode()
        self.models.refresh()

    def cleanup(self) -> None:
        """The module is closing: kill whatever still runs (without waiting) and remove temporary files."""
        self._timer.stop()
        if self._job is not None:
            self._job.abandon()
        if self._install is not None:
            self._install.abandon()
        if self._deviceCheck is not None:
            self._deviceCheck.abandon()
        if self.models is not None:
            self.models.cleanup()
        self.removeObservers()
        self._disconnectParameterNode()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self._disconnectParameterNode()

    def onSceneStartClose(self, caller, event) -> None:
        if self._job is not None:
            self._job.cancel()  # the timer finishes the stop; the closing scene gets nothing
        self._result = None
        self._disconnectParameterNode()
        self._parameterNode = None

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        parameterNode = self.logic.getParameterNode()
        if not parameterNode.inputVolume:
            parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        self._disconnectParameterNode()
        self._parameterNode = parameterNode
        self._parameterNodeGuiTag = parameterNode.connectGui(self.ui)
        self.addObserver(parameterNode, "ModifiedEvent", self.updateGuiFromState)
        self.updateGuiFromState()

    def _disconnectParameterNode(self) -> None:
        if self._parameterNode is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, "ModifiedEvent", self.updateGuiFromState)
            self._parameterNodeGuiTag = None

    # -- segmentation ---------------------------------------------------------------------------------------

    def onSegmentButton(self) -> None:
        if self._install is not None and not self._install.finished:
            self._install.cancel()
        elif self._job is not None and not self._job.finished:
            self._job.cancel()
        else:
            self._beginRun()
        self.updateGuiFromState()

    def _beginRun(self) -> None:
        """Licence first (a model to download), then the engine's packages (asks), then the run."""
        entry = self.models.selected()
        if entry is None:
            return
        if entry.downloadable and not self.models.confirmDownload(entry):
            return
        self._missing = dependencies.missingPackages()
        self.models.packagesMissing = bool(self._missing)
        if self._missing:
            self._askToInstall(self._missing, then=self._afterPackagesInstalled)
        else:
            self._startRun()

    def _afterPackagesInstalled(self) -> None:
        """First use: now the engine can read models; the run reads the selected one itself."""
        self._missing = dependencies.missingPackages()
        self.models.packagesMissing = bool(self._missing)
        if self._missing:
            slicer.util.errorDisplay(f"still missing after installation: {', '.join(self._missing)}")
            return
        self._startRun()

    def _askToInstall(self, missing: list[str], then) -> None:
        """Ask first (no wait cursor), then install in the background and call ``then`` once it worked."""
        try:
            steps = dependencies.installSteps(missing, pythonExecutable())
        except RuntimeError as err:
            slicer.util.errorDisplay(str(err))
            return
        if not slicer.util.confirmOkCancelDisplay(dependencies.installQuestion(missing)):
            self.appendLog("installation declined: nothing was installed")
            return
        self._install = InstallJob(steps, QProcessRunner, self.appendLog)
        self._afterInstall = then
        self._startPolling()

    def _startRun(self) -> None:
        with slicer.util.tryWithErrorDisplay("Segmentation could not start.", waitCursor=True):
            p = self._parameterNode
            entry = self.models.selected()
            if entry is None:
                raise ValueError("select a model, or import one with 'Import model...'")
            described = self.models.descriptions.get(entry.key) if entry.available else None
            self.ui.logTextEdit.clear()
            self.ui.progressBar.value = 0
            self._job = self.logic.startRun(
                p.inputVolume,
                entry,
                segmentOptionsFrom(p),
                runnerFactory=QProcessRunner,
                labels=catalog.labelsFromDescription(described) if described else None,
                outputSegmentation=p.outputSegmentation,
                replaceExisting=p.replaceExisting,
                roi=p.roi,
                onLog=self.appendLog,
                onProgress=self.onProgress,
            )
            self._startPolling()
        self.updateGuiFromState()

    def _onJobFinished(self) -> None:
        job = self._job
        self.ui.stageLabel.text = job.message
        downloaded = job.download is not None and job.download.state == JobState.SUCCEEDED
        if downloaded:
            self.models.forget(job.entry.key)
        if job.reading is not None and job.reading.result is not None:
            self.models.descriptions[job.entry.key] = job.reading.result
        if downloaded:
            self.models.refresh(select=job.entry.key)  # the model is installed now: listed by its title
        if job.state == JobState.SUCCEEDED:
            # The output selector keeps its choice ("Create new segmentation" by default), so that the next
            # Segment makes another segmentation instead of refusing to overwrite this one.
            self._result = job.segmentationNode
            slicer.util.setSliceViewerLayers(background=job.inputVolume)
        elif job.state == JobState.FAILED:
            slicer.util.errorDisplay(job.message, detailedText="\n".join(job.stderrTail))
        else:
            self.ui.progressBar.value = 0

    def _onInstallFinished(self) -> None:
        install, then = self._install, self._afterInstall
        self._afterInstall = None
        if install.state == InstallState.SUCCEEDED:
            self.models.packagesMissing = False
            self.models.readSelected()
            if then is not None:
                then()
        elif install.state == InstallState.FAILED:
            slicer.util.errorDisplay(install.message)

    # -- the timer --------------------------------------------------------------------------------------------

    def _startPolling(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def onPoll(self) -> None:
        """Move every background process on (never waits); the timer stops when none is left."""
        if self._job is not None and not self._job.finished and self._job.poll():
            self._onJobFinished()
        if self._install is not None and not self._install.finished and self._install.poll():
            self._onInstallFinished()
        if self._deviceCheck is not None and not self._deviceCheck.finished and self._deviceCheck.poll():
            self._onDeviceChecked()
        modelsBusy = self.models.poll()
        busy = [self._job, self._install, self._deviceCheck]
        if not modelsBusy and all(item is None or item.finished for item in busy):
            self._timer.stop()
        self.updateGuiFromState()

    # -- the panel ------------------------------------------------------------------------------------------

    def _segmentButtonState(self) -> ButtonState:
        job, install, p, entry = self._job, self._install, self._parameterNode, self.models.selected()
        key = entry.key if entry is not None else ""
        return segmentButtonState(
            installState=install.state if install is not None else None,
            jobState=job.state if job is not None else None,
            jobStage=job.stage if job is not None else "",
            hasInput=bool(p and p.inputVolume),
            entry=entry,
            offline=bool(p and p.offline),
            modelsBusy=self.models.busy,
            missingPackages=self._missing,
            readError=self.models.readErrors.get(key),
            described=key in self.models.descriptions,
        )

    def updateGuiFromState(self, *unused) -> None:
        if self.models is None:
            return
        self.models.showSelected()
        state = self._segmentButtonState()
        button = self.ui.segmentButton
        button.text, button.enabled, button.toolTip = state.text, state.enabled, state.tip
        busy = state.busy
        p = self._parameterNode
        self.models.updateGui(busy, offline=bool(p and p.offline))
        for name in ("inputVolumeSelector", "optionsCollapsibleButton"):
            getattr(self.ui, name).enabled = not busy
        self.ui.replaceExistingCheckBox.enabled = bool(p and p.outputSegmentation) and not busy
        self.ui.openInSegmentEditorButton.enabled = self._result is not None and self._result.GetScene() is not None

    def appendLog(self, line: str) -> None:
        self.ui.logTextEdit.appendPlainText(line)

    def onProgress(self, stage: str, fraction: float) -> None:
        self.ui.progressBar.value = round(100 * fraction)
        job = self._job
        self.ui.stageLabel.text = job.progressText if job is not None else f"{stage}: {100 * fraction:.0f}%"

    # -- GPU check, Segment Editor -------------------------------------------------------------------------

    def onCheckGpu(self) -> None:
        """Ask the engine (``gasa-segment --check-device``) in the background; the answer arrives in the label."""
        if self._deviceCheck is not None and not self._deviceCheck.finished:
            return
        device = self._parameterNode.device if self._parameterNode is not None else "auto"
        self._deviceCheck = self.logic.startDeviceCheck(device, runner=QProcessRunner())
        self.ui.deviceStatusLabel.text = "Checking the GPU..."
        self.ui.checkGpuButton.enabled = False
        self._startPolling()

    def _onDeviceChecked(self) -> None:
        query = self._deviceCheck
        self.ui.checkGpuButton.enabled = True
        report = query.result
        message = str(report.get("reason", "")) if report else f"GPU check failed: {query.error}"
        self.ui.deviceStatusLabel.text = message
        self.appendLog(message)

    def onOpenInSegmentEditor(self) -> None:
        node = self._result
        if node is None or node.GetScene() is None:
            return
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(node)
        reference = node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole())
        if reference is not None:
            editor.setSourceVolumeNode(reference)
