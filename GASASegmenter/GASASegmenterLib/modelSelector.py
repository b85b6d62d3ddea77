"""The panel's model row: the selector, the line under it, *Import model...* and *Download* (application only).

The selector lists :func:`GASASegmenterLib.catalog.listModels` (GASACore's catalogue with install states, the
installs it does not know, the folders imported by hand): a model that is here by its title, one that is
not as ``TITLE (download - 234 MB - licence)``. Everything that touches a process runs in the background
through :class:`~GASASegmenterLib.qtProcessRunner.QProcessRunner` and is moved on by the panel's timer
(:meth:`ModelSelector.poll`): reading a model's description, importing a zip (``gasa-models import``) and a
download started with *Download* (``gasa-models fetch``). The licence is shown, and must be accepted, before
the first download (:meth:`ModelSelector.confirmDownload`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import qt
import slicer

from . import catalog
from .engineQuery import EngineQuery
from .job import JobState
from .modelDownload import ModelDownload
from .qtProcessRunner import QProcessRunner

__all__ = ["ModelSelector", "QSettingsMapping"]

logger = logging.getLogger(__name__)


class QSettingsMapping(dict):
    """The bits of ``MutableMapping`` that :mod:`catalog` uses, stored in ``qt.QSettings``."""

    def get(self, key, default=None):
        return qt.QSettings().value(key, default)

    def __setitem__(self, key, value) -> None:
        qt.QSettings().setValue(key, value)


class _Reading:
    """An engine query reading one model's description; ``folder`` adds an imported folder once it is read."""

    def __init__(self, key: str, query: EngineQuery, folder: Path | None = None) -> None:
        self.key, self.query, self.folder = key, query, folder


class ModelSelector:
    """The model selector and what belongs to it.

    Args:
        ui: the panel's widgets (``modelComboBox``, ``modelStatusLabel``, ``importModelButton``,
            ``downloadModelButton``, ``progressBar``, ``stageLabel``).
        logic: the module logic.
        parameters: returns the parameter node (``None`` while there is none).
        log: appends a line to the panel's log.
        startPolling: makes sure the panel's timer runs.
    """

    def __init__(self, ui: Any, logic: Any, parameters: Callable[[], Any], log: Callable[[str], None],
                 startPolling: Callable[[], None]) -> None:  # fmt: skip
        self.ui, self.logic, self._parameters, self._log, self._startPolling = ui, logic, parameters, log, startPolling
        self.models: dict[str, catalog.ModelEntry] = {}
        self.descriptions: dict[str, dict[str, Any]] = {}
        self.readErrors: dict[str, str] = {}
        self.reading: _Reading | None = None
        self.importing: tuple[Path, EngineQuery] | None = None
        self.download: ModelDownload | None = None
        self.packagesMissing = False  #: the engine cannot read a model before its packages are installed
        self._stopping: list[EngineQuery] = []
        self.catalogProblem = ""  #: why the catalogue could not be read (only the imported folders are listed)

    def connect(self) -> None:
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onSelected)
        self.ui.importModelButton.connect("clicked(bool)", self.onImport)
        self.ui.downloadModelButton.connect("clicked(bool)", self.onDownload)

    # -- the list ---------------------------------------------------------------------------------------------

    def refresh(self, select: str | None = None) -> None:
        """Fill the selector from the catalogue, the installs and the imported folders; select ``select``."""
        settings = QSettingsMapping()
        try:
            entries, self.catalogProblem = catalog.listModels(settings), ""
        except catalog.CatalogError as err:
            self._log(str(err))
            self.catalogProblem = f"The model catalogue cannot be read: {err}"
            entries = catalog.importedModels(settings)
            self.ui.modelStatusLabel.text = self.catalogProblem
        self.models = {entry.key: entry for entry in entries}
        combo = self.ui.modelComboBox
        wasBlocked = combo.blockSignals(True)
        combo.clear()
        for index, entry in enumerate(entries):
            combo.addItem(entry.title)
            combo.setItemData(index, entry.key, qt.Qt.UserRole)
            tip = "\n\n".join(part for part in (entry.description, entry.summary) if part) or str(entry.path)
            combo.setItemData(index, tip, qt.Qt.ToolTipRole)
        combo.blockSignals(wasBlocked)
        parameters = self._parameters()
        if select and parameters is not None:
            parameters.modelKey = select
        self.showSelected()
        self.readSelected()

    def selected(self) -> catalog.ModelEntry | None:
        combo = self.ui.modelComboBox
        return self.models.get(str(combo.itemData(combo.currentIndex) or "")) if combo.currentIndex >= 0 else None

    def showSelected(self) -> None:
        """Select the parameter node's model in the selector (the newest version of its id when it moved on)."""
        combo, parameters = self.ui.modelComboBox, self._parameters()
        if parameters is None or not parameters.modelKey:
            return
        entry = catalog.findModel(list(self.models.values()), parameters.modelKey)
        current = self.selected()
        if entry is None or (current is not None and current.key == entry.key):
            return
        index = combo.findData(entry.key)
        if index >= 0:
            wasBlocked = combo.blockSignals(True)
            combo.currentIndex = index
            combo.blockSignals(wasBlocked)

    def onSelected(self, *unused) -> None:
        """The selector is not bound (its items change at run time): keep ``modelKey`` in step."""
        entry, parameters = self.selected(), self._parameters()
        if parameters is not None and entry is not None:
            parameters.modelKey = entry.key
        self.readSelected()

    # -- descriptions ------------------------------------------------------------------------------------------

    def description(self, entry: catalog.ModelEntry) -> dict[str, Any]:
        """The engine's description of a listed model that is here, once read.

        Raises:
            ValueError: the model is still being read, or could not be.
        """
        if entry.key in self.readErrors:
            raise ValueError(f"model {entry.title!r} cannot be used: {self.readErrors[entry.key]}")
        if entry.key not in self.descriptions:
            raise ValueError(f"model {entry.title!r} is still being read; segment again in a moment")
        return self.descriptions[entry.key]

    def _read(self, key: str, model: str, folder: Path | None = None) -> None:
        if self.reading is not None:
            if self.reading.key == key and folder is None:
                return
            self.reading.query.cancel()
            self._stopping.append(self.reading.query)
        self.reading = _Reading(key, self.logic.startModelDescription(model, runner=QProcessRunner()), folder)
        self.ui.modelStatusLabel.text = f"Reading {Path(model).name if folder else self.models[key].name}..."
        self._startPolling()

    def readSelected(self) -> None:
        """Ask the engine for the selected model's description unless it is known (or the model is not here)."""
        entry = self.selected()
        if entry is None or not entry.available:
            self.showStatus()
            return
        if self.packagesMissing:
            self.ui.modelStatusLabel.text = "Segment installs the engine's Python packages first (it asks)."
        elif entry.key not in self.descriptions and entry.key not in self.readErrors:
            self._read(entry.key, entry.model)
        else:
            self.showStatus()

    def forget(self, key: str) -> None:
        """Drop what was read of ``key`` (the model was just installed: read it again)."""
        self.descriptions.pop(key, None)
        self.readErrors.pop(key, None)

    def _onRead(self, reading: _Reading) -> None:
        query = reading.query
        if query.result is None:
            if reading.folder is not None:
                slicer.util.errorDisplay(f"{reading.folder} is not a usable model:\n{query.error}")
            else:
                self.readErrors[reading.key] = query.error
        elif reading.folder is not None:
            entry = catalog.rememberImportedModel(reading.folder, QSettingsMapping())
            self.descriptions[entry.key] = query.result
            self._log(f"imported {entry.path} ({len(query.result.get('labels', []))} labels)")
            self.refresh(select=entry.key)
        else:
            self.descriptions[reading.key] = query.result
            self.readErrors.pop(reading.key, None)
        self.showStatus()

    def showStatus(self) -> None:
        """The line under the selector: what the engine read, why the model cannot be used, or how to get it."""
        entry = self.selected()
        if entry is None:
            return
        if entry.unsupported or not entry.available:
            text = catalog.availabilityText(entry)
        elif entry.key in self.readErrors:
            text = f"This model cannot be used: {self.readErrors[entry.key]}"
        elif entry.key in self.descriptions:
            described = self.descriptions[entry.key]
            text = f"{described.get('name')}: {len(described.get('labels', []))} labels"
        else:
            return
        self.ui.modelStatusLabel.text = f"{text}\n{self.catalogProblem}" if self.catalogProblem else text

    # -- import, download --------------------------------------------------------------------------------------

    def onImport(self) -> None:
        """A model folder (read, then remembered) or a zip copied in by hand (``gasa-models import``)."""
        window = slicer.util.mainWindow()
        path = qt.QFileDialog.getExistingDirectory(
            window, "Model bundle folder or nnU-Net v2 results folder (Cancel to pick a .zip archive)"
        )
        if path:
            folder = Path(path).expanduser().resolve()
            self._read(f"imported:{folder}", str(folder), folder=folder)
            return
        path = qt.QFileDialog.getOpenFileName(window, "Model archive copied in by hand", "", "Model archive (*.zip)")
        if path:
            archive = Path(path).expanduser().resolve()
            self.importing = (archive, self.logic.startImport(archive, runner=QProcessRunner()))
            self.ui.modelStatusLabel.text = f"Importing {archive.name} (checking and unpacking)..."
            self._log(f"importing {archive}")
            self._startPolling()

    def _onImported(self) -> None:
        archive, query = self.importing
        self.importing = None
        if query.result is None:
            self._log(f"{archive} was not imported: {query.error}")
            slicer.util.errorDisplay(f"{archive.name} was not imported:\n{query.error}")
            self.showStatus()
            return
        key = f"{query.result['id']}@{query.result['version']}"
        self._log(f"imported {archive} as {key} into {query.result.get('path')}")
        self.forget(key)
        self.refresh(select=key)

    def confirmDownload(self, entry: catalog.ModelEntry) -> bool:
        """Show the licence, size and checksum state; ``True`` only when the user accepted."""
        box = qt.QMessageBox(slicer.util.mainWindow())
        box.setWindowTitle(f"Download {entry.name}")
        box.setIcon(qt.QMessageBox.Question)
        box.setText(catalog.licenceQuestion(entry))
        box.addButton(catalog.licenceAcceptText(entry), qt.QMessageBox.AcceptRole)
        box.setDefaultButton(box.addButton(qt.QMessageBox.Cancel))
        box.exec_()
        clicked = box.clickedButton()
        accepted = clicked is not None and box.buttonRole(clicked) == qt.QMessageBox.AcceptRole
        self._log(f"licence of {entry.key} accepted" if accepted else f"download of {entry.key} declined")
        return accepted

    def onDownload(self) -> None:
        """*Download* (or *Cancel download* while one runs): ``gasa-models fetch`` without segmenting."""
        if self.download is not None and not self.download.finished:
            self.download.cancel()
            return
        entry = self.selected()
        if entry is None or not entry.downloadable or not self.confirmDownload(entry):
            return
        self.ui.progressBar.value = 0
        self.download = self.logic.startDownload(entry, QProcessRunner(), onLog=self._log, onProgress=self._onProgress)
        self._startPolling()

    def _onProgress(self, stage: str, fraction: float) -> None:
        self.ui.progressBar.value = round(100 * fraction)
        self.ui.stageLabel.text = self.download.progressText if self.download is not None else stage

    def _onDownloaded(self) -> None:
        download = self.download
        self.ui.stageLabel.text = download.message
        if download.state == JobState.FAILED:
            slicer.util.errorDisplay(download.message, detailedText="\n".join(download.stderrTail))
        elif download.state == JobState.SUCCEEDED:
            self.forget(download.spec)
            self.refresh(select=download.spec)

    # -- the timer ---------------------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """An import or a download started here runs (Segment waits for it)."""
        return self.importing is not None or (self.download is not None and not self.download.finished)

    def poll(self) -> bool:
        """Move reading, importing and downloading on; ``True`` while any process of them is left."""
        if self.reading is not None and self.reading.query.poll():
            reading, self.reading = self.reading, None
            self._onRead(reading)
        if self.importing is not None and self.importing[1].poll():
            self._onImported()
        if self.download is not None and not self.download.finished and self.download.poll():
            self._onDownloaded()
        self._stopping = [query for query in self._stopping if not query.poll()]
        return bool(self._stopping or self.reading or self.busy)

    def updateGui(self, busy: bool, offline: bool) -> None:
        """Enable the row's controls for the panel's state (``busy``: a run or an install goes on)."""
        downloading = self.download is not None and not self.download.finished
        entry = self.selected()
        for widget in (self.ui.modelComboBox, self.ui.importModelButton):
            widget.enabled = not busy and not self.busy
        button = self.ui.downloadModelButton
        button.text = "Cancel download" if downloading else "Download"
        idle = not busy and not self.busy and not offline
        button.enabled = downloading or (idle and entry is not None and entry.downloadable)
        button.toolTip = (
            "Stop the download; what was downloaded is kept and the next download resumes it"
            if downloading
            else "Download, check and install the selected model without segmenting (its licence is shown first)"
        )

    def cleanup(self) -> None:
        """Kill whatever still runs, without waiting (the module is closing)."""
        if self.download is not None:
            self.download.abandon()
        queries = [self.reading and self.reading.query, self.importing and self.importing[1], *self._stopping]
        for query in queries:
            if query is not None:
                query.abandon()
