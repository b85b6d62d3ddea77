"""The module's logic, importable with slicer-core alone (no qt, ctk or ScriptedLoadableModule).

``GASASegmenter.GASASegmenterLogic`` adds Slicer's parameter node on top of :class:`SegmenterLogic`.
Typical use from a script or test::

    logic = SegmenterLogic(scene)
    job = logic.startSegmentation(volumeNode, modelPath, SegmentOptions(device="cpu"))
    logic.waitFor(job)          # or call job.poll() from a timer
    segmentationNode = job.segmentationNode

Options are the engine's own :class:`GASACore.options.SegmentOptions` (the engine command is built from
``SegmentOptions.to_argv()``), progress lines are parsed with :mod:`GASACore.events`, the device check is
``gasa-segment --check-device`` and a model's labels come from its description (``--describe-model``, or
the same torch-free reader in this process): none of these rules is repeated here, and none imports torch.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import slicer

import GASACore
from GASACore.labels import Label
from GASACore.options import Device, SegmentOptions

from .catalog import modelLabels
from .engineQuery import EngineQuery
from .job import JobRequest, JobState, SegmentationJob, segmentationCommand
from .processRunner import ProcessRunner, SubprocessRunner
from .volumeIO import cropBoxFromRoi, writeVolumeForEngine

__all__ = [
    "JobState",
    "SegmentOptions",
    "SegmenterLogic",
    "describeModelCommand",
    "deviceCheckCommand",
    "engineCommand",
    "engineEnvironment",
    "pythonExecutable",
]

logger = logging.getLogger(__name__)


def _insideSlicerApp() -> bool:
    return hasattr(slicer, "app") and slicer.app is not None


def pythonExecutable() -> str:
    """``PythonSlicer`` inside the Slicer application, else the running interpreter."""
    if _insideSlicerApp():
        found = shutil.which("PythonSlicer")
        if found:
            return found
        candidate = Path(sys.executable).with_name("PythonSlicer" + (".exe" if sys.platform == "win32" else ""))
        if candidate.is_file():
            return str(candidate)
    return sys.executable


def engineCommand() -> list[str]:
    """How to start ``gasa-segment``: ``PythonSlicer -m GASACore.cli`` in Slicer, ``python -m GASACore.cli`` outside."""
    return [pythonExecutable(), "-m", "GASACore.cli"]


def engineEnvironment() -> dict[str, str]:
    """The current environment with GASACore's parent folder first on ``PYTHONPATH`` (extension layout too)."""
    env = dict(os.environ)
    packageParent = str(Path(GASACore.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (packageParent, env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _defaultScene() -> slicer.vtkMRMLScene:
    scene = getattr(slicer, "mrmlScene", None)
    if scene is None:
        raise ValueError("no MRML scene: pass one to SegmenterLogic(scene) outside the Slicer application")
    return scene


def deviceCheckCommand(device: Device | str = "auto", engine: Sequence[str] | None = None) -> list[str]:
    """``gasa-segment --check-device --device DEVICE`` in the engine's Python."""
    return [*(engine or engineCommand()), "--check-device", "--device", str(Device.parse(device))]


def describeModelCommand(modelPath: str | Path, engine: Sequence[str] | None = None) -> list[str]:
    """``gasa-segment --describe-model MODEL`` in the engine's Python."""
    return [*(engine or engineCommand()), "--describe-model", str(modelPath)]


class SegmenterLogic:
    """Segment a volume node with a GASA / nnU-Net v2 model in a background engine process.

    Args:
        scene: the scene results go to (default: ``slicer.mrmlScene`` in the application).
        engine: how to start ``gasa-segment`` (default :func:`engineCommand`); e.g. with a launcher in front.
    """

    def __init__(self, scene: slicer.vtkMRMLScene | None = None, *, engine: Sequence[str] | None = None) -> None:
        self._scene = scene
        self._engine = list(engine) if engine else None

    def engineCommand(self) -> list[str]:
        """The command that starts ``gasa-segment``."""
        return list(self._engine) if self._engine else engineCommand()

    @property
    def scene(self) -> slicer.vtkMRMLScene:
        return self._scene if self._scene is not None else _defaultScene()

    def temporaryRoot(self) -> Path:
        """Slicer's temporary folder in the application, the system one elsewhere."""
        if _insideSlicerApp():
            return Path(slicer.app.temporaryPath)
        return Path(tempfile.gettempdir())

    def startSegmentation(
        self,
        inputVolume: slicer.vtkMRMLScalarVolumeNode,
        modelPath: str | Path,
        options: SegmentOptions | None = None,
        *,
        outputSegmentation: slicer.vtkMRMLSegmentationNode | None = None,
        replaceExisting: bool = False,
        roi: slicer.vtkMRMLNode | None = None,
        labels: Sequence[Label] | None = None,
        runner: ProcessRunner | None = None,
        createSurface: bool = True,
        onLog: Callable[[str], None] | None = None,
        onProgress: Callable[[str, float], None] | None = None,
    ) -> SegmentationJob:
        """Write the input to a temporary NRRD and start the engine on it; returns at once.

        Args:
            inputVolume: the CT (any orientation: RAS, LPS, oblique).
            modelPath: bundle folder or zip, or nnU-Net v2 results folder.
            options: engine options (defaults: auto device, TTA, all folds, step 0.5).
            outputSegmentation: an existing node to receive the segments; ``None`` creates a new node.
            replaceExisting: must be ``True`` to put the result into ``outputSegmentation``, whose current
                segments are then replaced (an existing segmentation is never overwritten by default).
            roi: a markups ROI; only the voxels inside it are segmented.
            labels: the model's labels, from its description (the panel reads it in the background); ``None``
                reads them here (:func:`GASASegmenterLib.catalog.modelLabels`, torch-free).
            runner: the process runner (default :class:`SubprocessRunner`).
            createSurface: build the closed-surface representation (3D display).
            onLog, onProgress: called from :meth:`SegmentationJob.poll` with log lines / (stage, fraction).

        Raises:
            ValueError: missing input, an output node that may not be overwritten, an ROI off the image.
        """
        if inputVolume is None or inputVolume.GetImageData() is None:
            raise ValueError("select an input volume that holds an image")
        if outputSegmentation is not None and not replaceExisting:
            raise ValueError(
                f"segmentation {outputSegmentation.GetName()!r} exists: tick 'Replace existing segments' to "
                "overwrite it, or choose 'Create new segmentation'"
            )
        options = options or SegmentOptions()
        modelPath = Path(modelPath)
        labels = tuple(labels) if labels is not None else modelLabels(modelPath)
        cropBox = cropBoxFromRoi(inputVolume, roi) if roi is not None else None
        tempDir = Path(tempfile.mkdtemp(prefix="GASASegmenter-", dir=self.temporaryRoot()))
        try:
            inputPath, outputPath = tempDir / "input.nrrd", tempDir / "labels.nrrd"
            writtenIjkToRas = writeVolumeForEngine(inputVolume, inputPath, cropBox)
        except BaseException:
            shutil.rmtree(tempDir, ignore_errors=True)
            raise
        request = JobRequest(
            scene=self.scene,
            command=tuple(segmentationCommand(self.engineCommand(), inputPath, outputPath, modelPath, options)),
            env=engineEnvironment(),
            tempDir=tempDir,
            outputPath=outputPath,
            inputVolume=inputVolume,
            writtenIjkToRas=writtenIjkToRas,
            cropBox=cropBox,
            labels=tuple(labels),
            existingNode=outputSegmentation,
            newNodeName=f"{inputVolume.GetName()} segmentation",
            createSurface=createSurface,
        )
        return SegmentationJob(request, runner or SubprocessRunner(), onLog=onLog, onProgress=onProgress)

    @staticmethod
    def waitFor(job: SegmentationJob, timeout: float | None = None, interval: float = 0.1) -> JobState:
        """Poll ``job`` until it finishes (scripts and tests); cancels it after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not job.poll():
            if deadline is not None and time.monotonic() > deadline:
                job.cancel()
            time.sleep(interval)
        return job.state

    def segment(
        self,
        inputVolume: slicer.vtkMRMLScalarVolumeNode,
        modelPath: str | Path,
        options: SegmentOptions | None = None,
        **kwargs,
    ) -> slicer.vtkMRMLSegmentationNode:
        """Blocking convenience: segment and return the segmentation node.

        Raises:
            RuntimeError: the segmentation failed or was cancelled (the message says why).
        """
        job = self.startSegmentation(inputVolume, modelPath, options, **kwargs)
        if self.waitFor(job) != JobState.SUCCEEDED:
            raise RuntimeError(job.message)
        return job.segmentationNode

    def startDeviceCheck(
        self, device: Device | str = "auto", runner: ProcessRunner | None = None, timeout: float = 120.0
    ) -> EngineQuery:
        """Start ``gasa-segment --check-device`` in the engine's Python; poll the returned query.

        Its result is the engine's report: ``device``, ``cuda_usable``, ``reason`` (the line to show the user),
        GPUs, torch and CUDA versions and the build's architectures.
        """
        command = deviceCheckCommand(device, self.engineCommand())
        return EngineQuery(runner or SubprocessRunner(), command, engineEnvironment(), timeout=timeout)

    def startModelDescription(
        self, modelPath: str | Path, runner: ProcessRunner | None = None, timeout: float = 300.0
    ) -> EngineQuery:
        """Start ``gasa-segment --describe-model MODEL``; the query's result is the model's description.

        The description (``GASACore.bundle.describe``) names the model, its labels with colours and Slicer
        terminology, spacing, patch size and folds; a zipped bundle is unpacked into the engine's cache first.
        """
        command = describeModelCommand(modelPath, self.engineCommand())
        return EngineQuery(runner or SubprocessRunner(), command, engineEnvironment(), timeout=timeout)

    def checkDevice(self, device: Device | str = "auto", timeout: float = 120.0) -> dict[str, Any]:
        """Blocking :meth:`startDeviceCheck` (scripts and tests); a failed check reports CUDA unusable with why."""
        query = self.startDeviceCheck(device, timeout=timeout)
        report = query.wait()
        if report is None:
            return {"device": "cpu", "cuda_usable": False, "reason": f"the GPU check failed: {query.error}"}
        return report
