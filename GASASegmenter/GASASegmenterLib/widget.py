"""The module panel: a thin layer over :class:`GASASegmenterLib.logic.SegmenterLogic` (application only).

Every engine interaction (the segmentation, Check GPU, reading a model's labels, installing packages) runs
in a background process through :class:`~GASASegmenterLib.qtProcessRunner.QProcessRunner` and is moved on
by one ``QTimer`` (:meth:`GASASegmenterWidget.onPoll`): no call on the UI thread waits for a process, and
Cancel only starts the stop (the timer finishes it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import qt
import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from . import catalog, dependencies
from .dependencies import InstallJob, InstallState
from .engineQuery import EngineQuery
from .job import JobState, SegmentationJob
from .logic import pythonExecutable
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


class _ModelReading:
    """An engine query reading one model's description; ``importing`` adds the model to the list when done."""

    def __init__(self, key: str, query: EngineQuery, importing: bool) -> None:
        self.key, self.query, self.importing = key, query, importing


class GASASegmenterWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Input, model, device and options; Segment / Cancel; progress, log and the result."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: GASASegmenterLogic | None = None
        self._parameterNode: GASASegmenterParameterNode | None = None
        self._parameterNodeGuiTag = None
        self._job: SegmentationJob | None = None
        self._result: Any = None  # the last segmentation node a run made or filled
        self._install: InstallJob | None = None
        self._afterInstall = None
        self._missing: list[str] = []  # the engine's packages not installed yet (checked at setup and after installs)
        self._segmentWhenRead = False  # Segment was clicked before the model could be read (first use)
        self._deviceCheck: EngineQuery | None = None
        self._reading: _ModelReading | None = None
        self._descriptions: dict[str, dict[str, Any]] = {}
        self._readErrors: dict[str, str] = {}
        self._stopping: list[EngineQuery] = []  # superseded queries whose processes are still being stopped
        self._models: dict[str, catalog.ModelEntry] = {}
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self.onPoll)

    @property
    def job(self) -> SegmentationJob | None:
        """The latest segmentation run (running, stopping or finished); ``None`` before the first."""
        return self._job

    def modelDescription(self, entry: catalog.ModelEntry) -> dict[str, Any]:
        """The engine's description of a listed model, once read.

        Raises:
            ValueError: the model is still being read, or could not be.
        """
        key = str(entry.path)
        if key in self._readErrors:
            raise ValueError(f"model {entry.title!r} cannot be used: {self._readErrors[key]}")
        if key not in self._descriptions:
            raise ValueError(f"model {entry.title!r} is still being read; segment again in a moment")
        return self._descriptions[key]

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
        self._missing = dependencies.missingPackages()
        self.initializeParameterNode()
        self.refreshModels()

    def cleanup(self) -> None:
        """The module is closing: kill whatever still runs (without waiting) and remove temporary files."""
        self._timer.stop()
        if self._job is not None:
            self._job.abandon()
        if self._install is not None:
            self._install.abandon()
        queries = [self._deviceCheck, self._reading and self._reading.query, *self._stopping]
        for query in queries:
            if query is not None and not query.finished:
                query.process.killNow()
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

    # -- models ---------------------------------------------------------------------------------------------

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
        self._readSelectedModel()

    def onModelSelected(self, *unused) -> None:
        """The model selector is not bound (its items change at run time): keep ``modelTitle`` in step."""
        if self._parameterNode is not None and self.ui.modelComboBox.currentText:
            self._parameterNode.modelTitle = self.ui.modelComboBox.currentText
        self._readSelectedModel()
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

    def _selectedModel(self) -> catalog.ModelEntry | None:
        return self._models.get(self.ui.modelComboBox.currentText)

    def _readModel(self, path: Path, importing: bool) -> None:
        """Ask the engine for the model's description (labels, terminology) in the background."""
        key = str(path)
        if self._reading is not None:
            if self._reading.key == key and not importing:
                return
            self._reading.query.cancel()
            self._stopping.append(self._reading.query)
        self._reading = _ModelReading(key, self.logic.startModelDescription(path, runner=QProcessRunner()), importing)
        self.ui.modelStatusLabel.text = f"Reading {path.name}..."
        self._startPolling()

    def _readSelectedModel(self) -> None:
        entry = self._selectedModel()
        if entry is None:
            return
        if self._missing:  # the engine cannot read a model before its packages are installed
            self.ui.modelStatusLabel.text = "Segment installs the engine's Python packages first (it asks)."
        elif str(entry.path) not in self._descriptions and str(entry.path) not in self._readErrors:
            self._readModel(entry.path, importing=False)
        else:
            self._showModelStatus(str(entry.path))

    def _onModelRead(self, reading: _ModelReading) -> None:
        query = reading.query
        if query.result is None:
            self._readErrors[reading.key] = query.error
            self._segmentWhenRead = False
            if reading.importing:
                slicer.util.errorDisplay(f"{reading.key} is not a usable model:\n{query.error}")
        else:
            self._descriptions[reading.key] = query.result
            self._readErrors.pop(reading.key, None)
            if self._segmentWhenRead and not reading.importing:
                self._segmentWhenRead = False
                self._startSegmentation()
            if reading.importing:
                entry = catalog.rememberImportedModel(Path(reading.key), _QSettingsMapping())
                self.appendLog(f"imported {entry.path} ({len(query.result.get('labels', []))} labels)")
                self.refreshModels(select=entry.title)
        self._showModelStatus(reading.key)

    def _showModelStatus(self, key: str) -> None:
        entry = self._selectedModel()
        if entry is None or str(entry.path) != key:
            return
        if key in self._readErrors:
            self.ui.modelStatusLabel.text = f"This model cannot be used: {self._readErrors[key]}"
        elif key in self._descriptions:
            described = self._descriptions[key]
            self.ui.modelStatusLabel.text = f"{described.get('name')}: {len(described.get('labels', []))} labels"

    def onImportModel(self) -> None:
        path = qt.QFileDialog.getExistingDirectory(
            slicer.util.mainWindow(), "Model bundle folder or nnU-Net v2 results folder (Cancel to pick a .zip)"
        )
        if not path:
            path = qt.QFileDialog.getOpenFileName(
                slicer.util.mainWindow(), "Zipped model bundle", "", "Model bundle (*.zip)"
            )
        if path:
            self._readModel(Path(path).expanduser().resolve(), importing=True)

    # -- segmentation ---------------------------------------------------------------------------------------

    def onSegmentButton(self) -> None:
        if self._install is not None and not self._install.finished:
            self._install.cancel()
        elif self._job is not None and not self._job.finished:
            self._job.cancel()
        else:
            self._missing = dependencies.missingPackages()
            if self._missing:
                self._askToInstall(self._missing, then=self._afterPackagesInstalled)
            else:
                self._startSegmentation()
        self.updateGuiFromState()

    def _afterPackagesInstalled(self) -> None:
        """First use: now the engine can read the model; the segmentation starts once it has."""
        self._missing = dependencies.missingPackages()
        if self._missing:
            slicer.util.errorDisplay(f"still missing after installation: {', '.join(self._missing)}")
            return
        self._segmentWhenRead = True
        self._readSelectedModel()
        entry = self._selectedModel()
        if entry is not None and str(entry.path) in self._descriptions:
            self._segmentWhenRead = False
            self._startSegmentation()

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

    def _startSegmentation(self) -> None:
        with slicer.util.tryWithErrorDisplay("Segmentation could not start.", waitCursor=True):
            p = self._parameterNode
            entry = self._selectedModel()
            if entry is None:
                raise ValueError("select a model, or import one with 'Import model...'")
            labels = catalog.labelsFromDescription(self.modelDescription(entry))
            options = segmentOptionsFrom(p)
            self.ui.logTextEdit.clear()
            self.ui.progressBar.value = 0
            self._job = self.logic.startSegmentation(
                p.inputVolume,
                catalog.resolveModelPath(entry),
                options,
                labels=labels,
                outputSegmentation=p.outputSegmentation,
                replaceExisting=p.replaceExisting,
                roi=p.roi,
                runner=QProcessRunner(),
                onLog=self.appendLog,
                onProgress=self.onProgress,
            )
            self._startPolling()
        self.updateGuiFromState()

    def _onJobFinished(self) -> None:
        job = self._job
        self.ui.stageLabel.text = job.message
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
        if install.state == InstallState.SUCCEEDED and then is not None:
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
        if self._reading is not None and self._reading.query.poll():
            reading, self._reading = self._reading, None
            self._onModelRead(reading)
        self._stopping = [query for query in self._stopping if not query.poll()]
        busy = [self._job, self._install, self._deviceCheck, self._reading and self._reading.query]
        if not self._stopping and all(item is None or item.finished for item in busy):
            self._timer.stop()
        self.updateGuiFromState()

    # -- the panel ------------------------------------------------------------------------------------------

    def _segmentButtonState(self) -> tuple[str, bool, str]:
        job, install, p = self._job, self._install, self._parameterNode
        if install is not None and not install.finished:
            stopping = install.state == InstallState.STOPPING
            return ("Stopping..." if stopping else "Cancel installation"), not stopping, "Stop installing packages"
        if job is not None and job.state == JobState.CANCELLING:
            return "Stopping...", False, "Stopping the engine"
        if job is not None and job.state == JobState.RUNNING:
            return "Cancel", True, "Stop the segmentation; the scene stays as it was"
        entry = self._selectedModel()
        if not (p and p.inputVolume):
            return "Segment", False, "Select an input volume"
        if entry is None:
            return "Segment", False, "Select a model, or import one"
        if self._missing:
            return "Segment", True, f"Installs {', '.join(self._missing)} first (asks), then segments"
        if self._segmentWhenRead:
            return "Segment", False, "Reading the model; the segmentation starts next"
        if str(entry.path) in self._readErrors:
            return "Segment", False, f"This model cannot be used: {self._readErrors[str(entry.path)]}"
        if str(entry.path) not in self._descriptions:
            return "Segment", False, "Reading the model..."
        return "Segment", True, "Segment the input volume"

    def updateGuiFromState(self, *unused) -> None:
        self._showSelectedModel()
        text, enabled, tip = self._segmentButtonState()
        self.ui.segmentButton.text, self.ui.segmentButton.enabled, self.ui.segmentButton.toolTip = text, enabled, tip
        busy = text != "Segment"
        for name in ("inputVolumeSelector", "modelComboBox", "importModelButton", "optionsCollapsibleButton"):
            getattr(self.ui, name).enabled = not busy
        p = self._parameterNode
        self.ui.replaceExistingCheckBox.enabled = bool(p and p.outputSegmentation) and not busy
        self.ui.openInSegmentEditorButton.enabled = self._result is not None and self._result.GetScene() is not None

    def appendLog(self, line: str) -> None:
        self.ui.logTextEdit.appendPlainText(line)

    def onProgress(self, stage: str, fraction: float) -> None:
        self.ui.progressBar.value = round(100 * fraction)
        self.ui.stageLabel.text = f"{stage}: {100 * fraction:.0f}%"

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
