"""The module panel: a thin layer over :class:`GASASegmenterLib.logic.SegmenterLogic` (application only)."""

from __future__ import annotations

import logging
from pathlib import Path

import qt
import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from . import catalog, dependencies
from .engineQuery import EngineQuery
from .job import JobState, SegmentationJob
from .parameterNode import GASASegmenterLogic, GASASegmenterParameterNode, segmentOptionsFrom
from .qtProcessRunner import QProcessRunner

__all__ = ["GASASegmenterWidget"]

logger = logging.getLogger(__name__)

POLL_INTERVAL_MS = 200


class _QSettingsMapping(dict):
    """The bits of ``MutableMapping`` that :mod:`catalog` uses, stored in ``qt.QSettings``."""

    def get(self, key, default=None):
        return qt.QSettings().value(key, default)

    def __setitem__(self, key, value) -> None:
        qt.QSettings().setValue(key, value)


class GASASegmenterWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Input, model, device and options; Segment / Cancel; progress, log and the result."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: GASASegmenterLogic | None = None
        self._parameterNode: GASASegmenterParameterNode | None = None
        self._parameterNodeGuiTag = None
        self._job: SegmentationJob | None = None
        self._deviceCheck: EngineQuery | None = None
        self._models: dict[str, catalog.ModelEntry] = {}
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self.onPoll)
        self._deviceCheckTimer = qt.QTimer()
        self._deviceCheckTimer.setInterval(POLL_INTERVAL_MS)
        self._deviceCheckTimer.connect("timeout()", self.onPollDeviceCheck)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/GASASegmenter.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = GASASegmenterLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegmentButton)
        self.ui.importModelButton.connect("clicked(bool)", self.onImportModel)
        self.ui.checkGpuButton.connect("clicked(bool)", self.onCheckGpu)
        self.ui.openInSegmentEditorButton.connect("clicked(bool)", self.onOpenInSegmentEditor)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelSelected)
        self.refreshModels()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self._cancelJob()
        if self._deviceCheck is not None:
            self._deviceCheck.cancel()
            self._deviceCheckTimer.stop()
        self.removeObservers()
        self._disconnectParameterNode()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self._disconnectParameterNode()

    def onSceneStartClose(self, caller, event) -> None:
        self._cancelJob()
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

    def refreshModels(self, select: str | None = None) -> None:
        """Fill the model selector from the catalogue and the imported models."""
        entries: list[catalog.ModelEntry] = []
        try:
            entries += catalog.loadCatalog()
        except catalog.CatalogError as err:
            self.appendLog(str(err))
        entries += catalog.importedModels(_QSettingsMapping())
        self._models = {entry.title: entry for entry in entries}
        combo = self.ui.modelComboBox
        wasBlocked = combo.blockSignals(True)
        combo.clear()
        for entry in entries:
            combo.addItem(entry.title)
            combo.setItemData(combo.count - 1, entry.description or str(entry.path), qt.Qt.ToolTipRole)
        combo.blockSignals(wasBlocked)
        if select and self._parameterNode is not None:
            self._parameterNode.modelTitle = select
        self._showSelectedModel()

    def onModelSelected(self, *unused) -> None:
        """The model selector is not bound (its items change at run time): keep ``modelTitle`` in step."""
        if self._parameterNode is not None and self.ui.modelComboBox.currentText:
            self._parameterNode.modelTitle = self.ui.modelComboBox.currentText
        self.updateGuiFromState()

    def _showSelectedModel(self) -> None:
        combo, p = self.ui.modelComboBox, self._parameterNode
        if p is None or not p.modelTitle or combo.currentText == p.modelTitle:
            return
        index = combo.findText(p.modelTitle)
        if index >= 0:
            wasBlocked = combo.blockSignals(True)
            combo.currentIndex = index
            combo.blockSignals(wasBlocked)

    def updateGuiFromState(self, *unused) -> None:
        running = self._job is not None and not self._job.finished
        p = self._parameterNode
        self._showSelectedModel()
        ready = bool(p and p.inputVolume and self.ui.modelComboBox.currentText)
        self.ui.segmentButton.text = "Cancel" if running else "Segment"
        self.ui.segmentButton.enabled = running or ready
        self.ui.segmentButton.toolTip = (
            "Stop the segmentation; the scene stays as it was"
            if running
            else ("Segment the input volume" if ready else "Select an input volume and a model")
        )
        for name in ("inputVolumeSelector", "modelComboBox", "importModelButton", "optionsCollapsibleButton"):
            getattr(self.ui, name).enabled = not running
        self.ui.replaceExistingCheckBox.enabled = bool(p and p.outputSegmentation) and not running
        self.ui.openInSegmentEditorButton.enabled = bool(
            self._job and self._job.state == JobState.SUCCEEDED and self._job.segmentationNode
        )

    def appendLog(self, line: str) -> None:
        self.ui.logTextEdit.appendPlainText(line)

    def onProgress(self, stage: str, fraction: float) -> None:
        self.ui.progressBar.value = round(100 * fraction)
        self.ui.stageLabel.text = f"{stage}: {100 * fraction:.0f}%"

    def onSegmentButton(self) -> None:
        if self._job is not None and not self._job.finished:
            self._cancelJob()
            return
        with slicer.util.tryWithErrorDisplay("Segmentation could not start.", waitCursor=True):
            if not dependencies.installMissing(slicer.util.confirmOkCancelDisplay, self.appendLog):
                return
            p = self._parameterNode
            entry = self._models.get(self.ui.modelComboBox.currentText)
            if entry is None:
                raise ValueError("select a model, or import one with 'Import model...'")
            options = segmentOptionsFrom(p)
            self.ui.logTextEdit.clear()
            self.ui.progressBar.value = 0
            self._job = self.logic.startSegmentation(
                p.inputVolume,
                catalog.resolveModelPath(entry),
                options,
                outputSegmentation=p.outputSegmentation,
                replaceExisting=p.replaceExisting,
                roi=p.roi,
                runner=QProcessRunner(),
                onLog=self.appendLog,
                onProgress=self.onProgress,
            )
            self._timer.start()
        self.updateGuiFromState()

    def onPoll(self) -> None:
        if self._job is None or self._job.poll():
            self._timer.stop()
            self._onFinished()

    def _onFinished(self) -> None:
        job = self._job
        self.updateGuiFromState()
        if job is None:
            return
        self.ui.stageLabel.text = job.message
        if job.state == JobState.SUCCEEDED:
            self._parameterNode.outputSegmentation = job.segmentationNode
            slicer.util.setSliceViewerLayers(background=job.inputVolume)
        elif job.state == JobState.FAILED:
            slicer.util.errorDisplay(job.message, detailedText="\n".join(job.stderrTail))

    def _cancelJob(self) -> None:
        if self._job is not None and not self._job.finished:
            self._job.cancel()
            self._timer.stop()
            self.ui.progressBar.value = 0
            self._onFinished()

    def onImportModel(self) -> None:
        path = qt.QFileDialog.getExistingDirectory(
            slicer.util.mainWindow(), "Model bundle folder or nnU-Net v2 results folder (Cancel to pick a .zip)"
        )
        if not path:
            path = qt.QFileDialog.getOpenFileName(
                slicer.util.mainWindow(), "Zipped model bundle", "", "Model bundle (*.zip)"
            )
        if not path:
            return
        with slicer.util.tryWithErrorDisplay(f"{path} is not a usable model.", waitCursor=True):
            if not dependencies.installMissing(slicer.util.confirmOkCancelDisplay, self.appendLog):
                return
            entry = catalog.importModel(Path(path), _QSettingsMapping())
            self.refreshModels(select=entry.title)
            self.appendLog(f"imported and verified {entry.path}")

    def onCheckGpu(self) -> None:
        """Ask the engine (``gasa-segment --check-device``) in the background; the answer arrives in the label."""
        if self._deviceCheck is not None and not self._deviceCheck.finished:
            return
        with slicer.util.tryWithErrorDisplay("GPU check could not start."):
            device = self._parameterNode.device if self._parameterNode is not None else "auto"
            self._deviceCheck = self.logic.startDeviceCheck(device)
            self.ui.deviceStatusLabel.text = "Checking the GPU..."
            self.ui.checkGpuButton.enabled = False
            self._deviceCheckTimer.start()

    def onPollDeviceCheck(self) -> None:
        query = self._deviceCheck
        if query is not None and not query.poll():
            return
        self._deviceCheckTimer.stop()
        self.ui.checkGpuButton.enabled = True
        if query is None:
            return
        report = query.result
        message = str(report.get("reason", "")) if report else f"GPU check failed: {query.error}"
        self.ui.deviceStatusLabel.text = message
        self.appendLog(message)

    def onOpenInSegmentEditor(self) -> None:
        job = self._job
        if job is None or job.segmentationNode is None:
            return
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(job.segmentationNode)
        editor.setSourceVolumeNode(job.inputVolume)
