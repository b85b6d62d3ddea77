"""One segmentation run: volume -> temporary NRRD -> engine process -> segmentation node.

The job never blocks: :meth:`SegmentationJob.poll` reads the engine's progress and, once the process has
ended, loads the result. The user's scene is changed only when the result is complete; on cancel or
failure the scene is exactly as before and the temporary files are removed.
"""

from __future__ import annotations

import enum
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import slicer

from GASACore.events import DoneEvent, ErrorEvent, LogEvent, ProgressEvent, parse_event_line
from GASACore.labels import Label
from GASACore.options import SegmentOptions

from .processRunner import ProcessRunner
from .segmentationBuilder import addSegmentsFromLabelMap, ensureConverterRules
from .volumeIO import CropBox, ijkToRasArray, readLabelMap

__all__ = ["JobRequest", "JobState", "SegmentationJob", "segmentationCommand"]

logger = logging.getLogger(__name__)


class JobState(str, enum.Enum):
    """Where a job is."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def segmentationCommand(
    engine: Sequence[str], inputPath: Path, outputPath: Path, modelPath: Path, options: SegmentOptions
) -> list[str]:
    """``ENGINE INPUT -o OUTPUT -m MODEL <options.to_argv()> --progress json``."""
    return [
        *engine,
        str(inputPath),
        "-o",
        str(outputPath),
        "-m",
        str(modelPath),
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


class SegmentationJob:
    """A running engine process and what to do with its result.

    Attributes:
        request: what the job runs and where the result goes.
        state: a :class:`JobState`.
        stage: the engine's current stage (``load``, ``preprocess``, ``predict``, ``export``).
        progress: the whole run's fraction done, 0-1.
        message: a one-line summary once finished (the error for failures).
        segmentationNode: the result once succeeded.
    """

    def __init__(
        self,
        request: JobRequest,
        runner: ProcessRunner,
        onLog: Callable[[str], None] | None = None,
        onProgress: Callable[[str, float], None] | None = None,
    ) -> None:
        self.request = request
        self.runner = runner
        self.onLog = onLog or (lambda line: None)
        self.onProgress = onProgress or (lambda stage, fraction: None)
        self.state = JobState.RUNNING
        self.stage = "start"
        self.progress = 0.0
        self.message = ""
        self.engineError = ""
        self.stderrTail: list[str] = []
        self.segmentationNode: slicer.vtkMRMLSegmentationNode | None = None
        try:
            self.runner.start(request.command, request.env)
        except OSError as err:
            self._fail(f"could not start the segmentation engine ({request.command[0]}): {err}")

    @property
    def tempDir(self) -> Path:
        return self.request.tempDir

    @property
    def inputVolume(self) -> slicer.vtkMRMLScalarVolumeNode:
        return self.request.inputVolume

    @property
    def finished(self) -> bool:
        return self.state != JobState.RUNNING

    def _log(self, line: str) -> None:
        logger.info("%s", line)
        self.onLog(line)

    def _readOutput(self) -> None:
        for line in self.runner.readLines():
            event = parse_event_line(line)
            if isinstance(event, ProgressEvent):
                if event.stage != self.stage:
                    self._log(f"stage: {event.stage}")
                self.stage, self.progress = event.stage.value, event.overall
                self.onProgress(self.stage, self.progress)
            elif isinstance(event, ErrorEvent):
                self.engineError = event.message
                self._log(f"engine error: {event.message}")
            elif isinstance(event, DoneEvent):
                self._log(f"engine wrote {event.output}")
            elif isinstance(event, LogEvent):
                self._log(event.message)
        for line in self.runner.readErrorLines():
            self.stderrTail = [*self.stderrTail[-19:], line]
            self._log(line)

    def poll(self) -> bool:
        """Read progress; when the engine has ended, load its result. Returns ``True`` once finished."""
        if self.finished:
            return True
        self._readOutput()
        code = self.runner.exitCode()
        if code is None:
            return False
        self._readOutput()
        if code != 0:
            detail = self.engineError or next((s for s in reversed(self.stderrTail) if s.strip()), "no message")
            self._fail(f"segmentation failed (engine exit code {code}): {detail}")
            return True
        try:
            self._loadResult()
        except Exception as err:  # the scene is restored by _loadResult; report whatever went wrong
            logger.exception("loading the result failed")
            self._fail(f"segmentation finished but its result could not be loaded: {err}")
            return True
        self.state = JobState.SUCCEEDED
        self.progress = 1.0
        self.onProgress("done", 1.0)
        self.message = f"{len(self.request.labels)} segments in {self.segmentationNode.GetName()!r}"
        self._log(self.message)
        self._cleanUp()
        return True

    def cancel(self) -> None:
        """Kill the engine and everything it started; the scene stays as it was."""
        if self.finished:
            return
        self.runner.kill()
        self.state = JobState.CANCELLED
        self.message = "segmentation cancelled; the scene was not changed"
        self._log(self.message)
        self._cleanUp()

    def _fail(self, message: str) -> None:
        self.runner.kill()
        self.state = JobState.FAILED
        self.message = message
        self._log(message)
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
            node = request.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", request.newNodeName)
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
        except Exception:
            if backup is None:
                self._removeNode(node)
            else:
                node.GetSegmentation().DeepCopy(backup)
            raise
        self.segmentationNode = node

    def _removeNode(self, node: slicer.vtkMRMLSegmentationNode) -> None:
        scene = self.request.scene
        for index in range(node.GetNumberOfDisplayNodes()):
            display = node.GetNthDisplayNode(index)
            if display is not None:
                scene.RemoveNode(display)
        storage = node.GetStorageNode()
        if storage is not None:
            scene.RemoveNode(storage)
        scene.RemoveNode(node)
