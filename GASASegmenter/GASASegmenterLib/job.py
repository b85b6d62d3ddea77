"""One segmentation run: volume -> temporary NRRD -> engine process -> segmentation node.

The job never blocks: :meth:`SegmentationJob.poll` reads the engine's progress and, once the process has
ended, loads the result; :meth:`SegmentationJob.cancel` starts stopping the engine's whole process tree and
later polls finish it (SIGTERM, SIGKILL after the grace period). The user's scene is changed only when the
result is complete; on cancel or failure the scene is exactly as before and the temporary files are
removed once no process of the run is left. A new segmentation is placed in the subject hierarchy next to
the input volume (under its study).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import slicer

from GASACore.events import DoneEvent, DownloadEvent, ErrorEvent, ProgressEvent
from GASACore.labels import Label
from GASACore.options import SegmentOptions

from .engineProcessJob import EngineProcessJob, JobState
from .processRunner import ProcessRunner
from .segmentationBuilder import addSegmentsFromLabelMap, ensureConverterRules
from .volumeIO import CropBox, ijkToRasArray, readLabelMap

__all__ = ["JobRequest", "JobState", "SegmentationJob", "placeNextTo", "segmentationCommand"]

logger = logging.getLogger(__name__)


def segmentationCommand(
    engine: Sequence[str], inputPath: Path, outputPath: Path, model: str | Path, options: SegmentOptions
) -> list[str]:
    """``ENGINE INPUT -o OUTPUT -m MODEL <options.to_argv()> --progress json`` (``MODEL``: a path or catalogue id)."""
    return [
        *engine,
        str(inputPath),
        "-o",
        str(outputPath),
        "-m",
        str(model),
        *options.to_argv(),
        "--progress",
        "json",
    ]


@dataclass(frozen=True)
class JobRequest:
    """Everything one segmentation run needs, prepared by :meth:`SegmenterLogic.startSegmentation`.

    Attributes:
        scene: the scene that receives the result.
        command: the engine command (see :func:`segmentationCommand`).
        env: the engine's environment (``None``: this process's).
        tempDir: the run's temporary folder (input and output files); removed when the job ends.
        outputPath: the label map the engine writes.
        inputVolume: the segmented volume; the result's reference geometry.
        writtenIjkToRas: IJK-to-RAS matrix of the image the engine read (after an ROI crop).
        cropBox: the ROI crop, ``None`` for the whole volume.
        labels: the model's foreground labels (names, colours, terminology).
        existingNode: a segmentation node whose segments the result replaces; ``None`` creates a node.
        newNodeName: the name of the node created when ``existingNode`` is ``None``.
        createSurface: build the closed-surface representation (3D display).
    """

    scene: slicer.vtkMRMLScene
    command: tuple[str, ...]
    env: dict[str, str] | None
    tempDir: Path
    outputPath: Path
    inputVolume: slicer.vtkMRMLScalarVolumeNode
    writtenIjkToRas: object
    cropBox: CropBox | None
    labels: tuple[Label, ...]
    existingNode: slicer.vtkMRMLSegmentationNode | None = None
    newNodeName: str = "segmentation"
    createSurface: bool = True


class SegmentationJob(EngineProcessJob):
    """A running engine process and what to do with its result (an :class:`EngineProcessJob`).

    Attributes:
        request: what the job runs and where the result goes.
        stage: the engine's current stage (``load``, ``preprocess``, ``predict``, ``export``; ``download`` while
            the engine downloads a catalogue model named by id).
        progress: the whole run's fraction done, 0-1.
        segmentationNode: the result once succeeded.
        (state, message, engineError, stderrTail: as every :class:`EngineProcessJob`.)
    """

    processName = "segmentation engine"

    def __init__(
        self,
        request: JobRequest,
        runner: ProcessRunner,
        onLog: Callable[[str], None] | None = None,
        onProgress: Callable[[str, float], None] | None = None,
    ) -> None:
        super().__init__(runner, request.command, request.env, stage="start", onLog=onLog, onProgress=onProgress)
        self.request = request
        self.segmentationNode: slicer.vtkMRMLSegmentationNode | None = None

    @property
    def tempDir(self) -> Path:
        return self.request.tempDir

    @property
    def inputVolume(self) -> slicer.vtkMRMLScalarVolumeNode:
        return self.request.inputVolume

    def _handleEvent(self, event: object) -> None:
        if isinstance(event, ProgressEvent):
            if event.stage != self.stage:
                self._log(f"stage: {event.stage}")
            self.stage, self.progress = event.stage.value, event.overall
            self.onProgress(self.stage, self.progress)
        elif isinstance(event, DownloadEvent):  # a catalogue id the engine downloads on first use
            self.stage, self.progress = "download", event.fraction or 0.0
            self.onProgress(self.stage, self.progress)
        elif isinstance(event, ErrorEvent):
            self.engineError = event.message
            self._log(f"engine error: {event.message}")
        elif isinstance(event, DoneEvent):
            self._log(f"engine wrote {event.output}")
        else:
            super()._handleEvent(event)

    def _onExit(self, code: int) -> None:
        """Load the result of a successful run; the scene changes only when it is complete."""
        if code != 0:
            how = f"engine exit code {code}" if code > 0 else "the engine process was killed or crashed"
            self._finish(JobState.FAILED, f"segmentation failed ({how}): {self.failureDetail()}")
            return
        try:
            self._loadResult()
        except Exception as err:  # the scene is restored by _loadResult; report whatever went wrong
            logger.exception("loading the result failed")
            self._finish(JobState.FAILED, f"segmentation finished but its result could not be loaded: {err}")
            return
        self.progress = 1.0
        self.onProgress("done", 1.0)
        self._finish(JobState.SUCCEEDED, f"{len(self.request.labels)} segments in {self.segmentationNode.GetName()!r}")

    def _cancelText(self) -> tuple[str, str]:
        return "stopping the engine...", "segmentation cancelled; the scene was not changed"

    def abandon(self, message: str = "segmentation stopped: the module was closed") -> None:
        """Kill the engine at once and remove the temporary files (the module is closing); never waits."""
        super().abandon(message)

    def _onFinished(self) -> None:
        self._cleanUp()

    def _cleanUp(self) -> None:
        shutil.rmtree(self.request.tempDir, ignore_errors=True)

    def _loadResult(self) -> None:
        request = self.request
        volume = request.inputVolume
        size = request.cropBox.size if request.cropBox else tuple(volume.GetImageData().GetDimensions())
        labelImage = readLabelMap(request.outputPath, request.writtenIjkToRas, size)
        referenceIjkToRas = ijkToRasArray(volume)
        if request.existingNode is not None:
            node = request.existingNode
            backup = slicer.vtkSegmentation()
            backup.DeepCopy(node.GetSegmentation())
        else:
            name = request.scene.GenerateUniqueName(request.newNodeName)
            node = request.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
            backup = None
        try:
            wasModifying = node.StartModify()
            try:
                if backup is not None:
                    node.GetSegmentation().RemoveAllSegments()
                node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
                node.SetAndObserveTransformNodeID(volume.GetTransformNodeID())
                addSegmentsFromLabelMap(node, labelImage, request.labels, referenceIjkToRas, request.cropBox)
            finally:
                node.EndModify(wasModifying)
            node.CreateDefaultDisplayNodes()
            if request.createSurface:
                ensureConverterRules()
                node.CreateClosedSurfaceRepresentation()
                display = node.GetDisplayNode()
                if display is not None:
                    display.SetVisibility3D(True)
            if backup is None:
                placeNextTo(node, volume)
        except Exception:
            if backup is None:
                self._removeNode(node)
            else:
                node.GetSegmentation().DeepCopy(backup)
            raise
        self.segmentationNode = node

    def _removeNode(self, node: slicer.vtkMRMLSegmentationNode) -> None:
        scene = self.request.scene
        hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
        if hierarchy is not None:
            item = hierarchy.GetItemByDataNode(node)
            if item:
                hierarchy.RemoveItem(item, False, False)
        for index in range(node.GetNumberOfDisplayNodes()):
            display = node.GetNthDisplayNode(index)
            if display is not None:
                scene.RemoveNode(display)
        storage = node.GetStorageNode()
        if storage is not None:
            scene.RemoveNode(storage)
        scene.RemoveNode(node)


def placeNextTo(node: slicer.vtkMRMLNode, reference: slicer.vtkMRMLNode) -> None:
    """Put ``node`` in the subject hierarchy under the parent of ``reference`` (a volume's study).

    Slicer files a new node at the hierarchy's root; a result belongs with the scan it was made from.
    """
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(node.GetScene())
    if hierarchy is None:
        return
    referenceItem = hierarchy.GetItemByDataNode(reference)
    if not referenceItem:
        return
    parent = hierarchy.GetItemParent(referenceItem)
    item = hierarchy.GetItemByDataNode(node)
    if item:
        hierarchy.SetItemParent(item, parent)
    else:
        hierarchy.CreateItem(parent, node)
