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
from dataclasses import dataclass, field
from pathlib import Path

import slicer

from GASACore.labels import Label

from .processRunner import ProcessRunner
from .progress import parseProgressLine
from .segmentationBuilder import addSegmentsFromLabelMap, ensureConverterRules
from .volumeIO import CropBox, ijkToRasArray, readLabelMap

__all__ = ["JobState", "SegmentationJob", "SegmentationOptions"]

logger = logging.getLogger(__name__)


class JobState(str, enum.Enum):
    """Where a job is."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class SegmentationOptions:
    """How the engine runs.

    Attributes:
        device: ``"auto"`` (CUDA when usable), ``"cuda"`` or ``"cpu"``.
        folds: fold numbers/names to ensemble; all folds of the model when empty.
        tta: mirroring test-time augmentation (about 8x slower, slightly better).
        stepSize: sliding-window step as a fraction of the patch, in (0, 1].
        fast: first fold only, no TTA, step 1.0.
    """

    device: str = "auto"
    folds: Sequence[str] = field(default_factory=tuple)
    tta: bool = True
    stepSize: float = 0.5
    fast: bool = False

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"device must be 'auto', 'cuda' or 'cpu', got {self.device!r}")
        if not 0.0 < float(self.stepSize) <= 1.0:
            raise ValueError(f"step size must be in (0, 1], got {self.stepSize!r}")

    def engineArguments(self) -> list[str]:
        """The matching ``gasa-segment`` arguments."""
        arguments = ["--device", self.device, "--step-size", f"{float(self.stepSize):g}"]
        if self.folds:
            arguments += ["--folds", *[str(f) for f in self.folds]]
        if not self.tta:
            arguments.append("--no-tta")
        if self.fast:
            arguments.append("--fast")
        return arguments


@dataclass
class _Target:
    """Where the result goes: an existing node (replace its segments) or a new node with ``name``."""

    existingNode: slicer.vtkMRMLSegmentationNode | None
    name: str
    createSurface: bool


class SegmentationJob:
    """A running engine process and what to do with its result.

    Attributes:
        state: a :class:`JobState`.
        stage: the engine's current stage (``load``, ``preprocess``, ``predict``, ``export``).
        progress: the whole run's fraction done, 0-1.
        message: a one-line summary once finished (the error for failures).
        segmentationNode: the result once succeeded.
    """

    def __init__(
        self,
        *,
        scene: slicer.vtkMRMLScene,
        runner: ProcessRunner,
        command: Sequence[str],
        env: dict[str, str] | None,
        tempDir: Path,
        outputPath: Path,
        inputVolume: slicer.vtkMRMLScalarVolumeNode,
        writtenIjkToRas,
        cropBox: CropBox | None,
        labels: Sequence[Label],
        target: _Target,
        onLog: Callable[[str], None] | None = None,
        onProgress: Callable[[str, float], None] | None = None,
    ) -> None:
        self.scene = scene
        self.runner = runner
        self.tempDir = tempDir
        self.outputPath = outputPath
        self.inputVolume = inputVolume
        self.writtenIjkToRas = writtenIjkToRas
        self.cropBox = cropBox
        self.labels = tuple(labels)
        self.target = target
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
            self.runner.start(command, env)
        except OSError as err:
            self._fail(f"could not start the segmentation engine ({command[0]}): {err}")

    @property
    def finished(self) -> bool:
        return self.state != JobState.RUNNING

    def _log(self, line: str) -> None:
        logger.info("%s", line)
        self.onLog(line)

    def _readOutput(self) -> None:
        for line in self.runner.readLines():
            event = parseProgressLine(line)
            if event is None:
                continue
            if event.kind == "progress":
                if event.stage != self.stage:
                    self._log(f"stage: {event.stage}")
                self.stage, self.progress = event.stage, event.overall
                self.onProgress(self.stage, self.progress)
            elif event.kind == "error":
                self.engineError = event.message
                self._log(f"engine error: {event.message}")
            elif event.kind == "done":
                self._log(f"engine wrote {event.output}")
            else:
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
        self.message = f"{len(self.labels)} segments in {self.segmentationNode.GetName()!r}"
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
        shutil.rmtree(self.tempDir, ignore_errors=True)

    def _loadResult(self) -> None:
        size = self.cropBox.size if self.cropBox else tuple(self.inputVolume.GetImageData().GetDimensions())
        labelImage = readLabelMap(self.outputPath, self.writtenIjkToRas, size)
        referenceIjkToRas = ijkToRasArray(self.inputVolume)
        target = self.target
        if target.existingNode is not None:
            node = target.existingNode
            backup = slicer.vtkSegmentation()
            backup.DeepCopy(node.GetSegmentation())
        else:
            node = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", target.name)
            backup = None
        try:
            wasModifying = node.StartModify()
            try:
                if backup is not None:
                    node.GetSegmentation().RemoveAllSegments()
                node.SetReferenceImageGeometryParameterFromVolumeNode(self.inputVolume)
                node.SetAndObserveTransformNodeID(self.inputVolume.GetTransformNodeID())
                addSegmentsFromLabelMap(node, labelImage, self.labels, referenceIjkToRas, self.cropBox)
            finally:
                node.EndModify(wasModifying)
            node.CreateDefaultDisplayNodes()
            if target.createSurface:
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
        for index in range(node.GetNumberOfDisplayNodes()):
            display = node.GetNthDisplayNode(index)
            if display is not None:
                self.scene.RemoveNode(display)
        storage = node.GetStorageNode()
        if storage is not None:
            self.scene.RemoveNode(storage)
        self.scene.RemoveNode(node)
