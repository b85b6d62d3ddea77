"""The module's logic, importable with slicer-core alone (no qt, ctk or ScriptedLoadableModule).

``GASASegmenter.GASASegmenterLogic`` adds Slicer's parameter node on top of :class:`SegmenterLogic`.
Typical use from a script or test::

    logic = SegmenterLogic(scene)
    entry = next(e for e in logic.listModels() if e.id == "gasa-demo-btcv")   # the catalogue and imports
    run = logic.startRun(volumeNode, entry, SegmentOptions(device="cpu"))   # downloads first if needed
    logic.waitFor(run)          # or call run.poll() from a timer
    segmentationNode = run.segmentationNode

Options are the engine's own :class:`GASACore.options.SegmentOptions` (the engine command is built from
``SegmentOptions.to_argv()``), progress lines are parsed with :mod:`GASACore.events`, the device check is
``gasa-segment --check-device``, a model's labels come from its description (``--describe-model``, or
the same torch-free reader in this process), and the catalogue, downloads and imports are GASACore's
(:func:`GASACore.models.list_models`, ``gasa-models fetch`` / ``import`` in the engine's Python): none of
these rules is repeated here, and none imports torch.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import slicer

import GASACore
from GASACore.labels import Label
from GASACore.options import Device, SegmentOptions

from .catalog import ModelEntry, importIdFor, listModels, modelLabels, whyNotRunnable
from .engineQuery import EngineQuery
from .job import JobRequest, JobState, SegmentationJob, segmentationCommand
from .modelDownload import ModelDownload, fetchCommand, importCommand, modelsCommand
from .modelRun import ModelRun, RunSteps
from .processRunner import ProcessRunner, SubprocessRunner
from .volumeIO import cropBoxFromRoi, writeVolumeForEngine

__all__ = [
    "JobState",
    "ModelEntry",
    "ModelRun",
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


def _checkTarget(
    inputVolume: slicer.vtkMRMLScalarVolumeNode | None,
    outputSegmentation: slicer.vtkMRMLSegmentationNode | None,
    replaceExisting: bool,
) -> None:
    """Refuse a missing input, and an existing output segmentation the user did not allow to be replaced."""
    if inputVolume is None or inputVolume.GetImageData() is None:
        raise ValueError("select an input volume that holds an image")
    if outputSegmentation is not None and not replaceExisting:
        raise ValueError(
            f"segmentation {outputSegmentation.GetName()!r} exists: tick 'Replace existing segments' to "
            "overwrite it, or choose 'Create new segmentation'"
        )


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

    def modelsCommand(self) -> list[str]:
        """The command that starts ``gasa-models`` (the same Python and launcher as the engine)."""
        return modelsCommand(self.engineCommand())

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
        model: str | Path,
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
            model: what ``gasa-segment -m`` takes: a bundle folder or zip, an nnU-Net v2 results folder, or a
                catalogue ``ID@VERSION`` (:attr:`ModelEntry.model`; the engine downloads one that is not
                installed unless ``options.offline``: :meth:`startRun` downloads it first, with its own progress).
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
        _checkTarget(inputVolume, outputSegmentation, replaceExisting)
        options = options or SegmentOptions()
        labels = tuple(labels) if labels is not None else modelLabels(model)
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
            command=tuple(segmentationCommand(self.engineCommand(), inputPath, outputPath, model, options)),
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
        model: str | Path | ModelEntry,
        options: SegmentOptions | None = None,
        **kwargs,
    ) -> slicer.vtkMRMLSegmentationNode:
        """Blocking convenience: segment (a :class:`ModelEntry` is downloaded first when needed) and return the node.

        Raises:
            RuntimeError: the download or segmentation failed or was cancelled (the message says why).
        """
        if isinstance(model, ModelEntry):
            job = self.startRun(inputVolume, model, options, **kwargs)
        else:
            job = self.startSegmentation(inputVolume, model, options, **kwargs)
        if self.waitFor(job) != JobState.SUCCEEDED:
            raise RuntimeError(job.message)
        return job.segmentationNode

    def listModels(self, settings: Mapping[str, Any] | None = None) -> list[ModelEntry]:
        """The catalogue's models with their states, installs it does not know, and the folders imported by hand
        (``settings``: the application settings holding them; :func:`GASASegmenterLib.catalog.listModels`)."""
        return listModels(settings or {})

    def startDownload(
        self,
        entry: ModelEntry,
        runner: ProcessRunner | None = None,
        *,
        onLog: Callable[[str], None] | None = None,
        onProgress: Callable[[str, float], None] | None = None,
    ) -> ModelDownload:
        """Start ``gasa-models fetch ID@VERSION --progress json`` in the engine's Python; poll the download.

        Raises:
            ValueError: ``entry`` is not a catalogue model that a download installs.
        """
        if not entry.downloadable:
            raise ValueError(f"{entry.name} cannot be downloaded: it is {entry.state} ({entry.summary or entry.model})")
        command = fetchCommand(self.modelsCommand(), entry.key)
        return ModelDownload(
            runner or SubprocessRunner(), command, engineEnvironment(), entry.key, onLog=onLog, onProgress=onProgress
        )

    def startImport(
        self, archive: str | Path, runner: ProcessRunner | None = None, timeout: float = 1800.0
    ) -> EngineQuery:
        """Start ``gasa-models import ARCHIVE`` (a zip copied in by hand) in the engine's Python.

        The archive is checked against the catalogue entry it belongs to (by SHA-256 or file name), or installed
        under an id made from its file name (:func:`GASASegmenterLib.catalog.importIdFor`); the query's result
        is the install (``id``, ``version``, ``path``, ...), its error GASACore's reason for a refusal.
        """
        command = importCommand(self.modelsCommand(), Path(archive), importIdFor(archive))
        return EngineQuery(runner or SubprocessRunner(), command, engineEnvironment(), timeout=timeout)

    def startRun(
        self,
        inputVolume: slicer.vtkMRMLScalarVolumeNode,
        entry: ModelEntry,
        options: SegmentOptions | None = None,
        *,
        runnerFactory: Callable[[], ProcessRunner] = SubprocessRunner,
        labels: Sequence[Label] | None = None,
        outputSegmentation: slicer.vtkMRMLSegmentationNode | None = None,
        replaceExisting: bool = False,
        roi: slicer.vtkMRMLNode | None = None,
        createSurface: bool = True,
        onLog: Callable[[str], None] | None = None,
        onProgress: Callable[[str, float], None] | None = None,
    ) -> ModelRun:
        """Segment with a listed model: download it first when it is not installed, read its labels, segment.

        Args:
            runnerFactory: makes one runner per step (download, read, segmentation).
            labels: the model's labels when the caller has read them already (ignored when a download comes first).
            Others: as :meth:`startSegmentation` (checked before anything starts).

        Raises:
            ValueError: the model cannot run (not runnable yet, not downloadable, or not here while
                ``options.offline``), or the input or output is not usable.
        """
        options = options or SegmentOptions()
        problem = whyNotRunnable(entry, offline=options.offline)
        if problem:
            raise ValueError(problem)
        _checkTarget(inputVolume, outputSegmentation, replaceExisting)

        def segment(modelLabels: Sequence[Label]) -> SegmentationJob:
            return self.startSegmentation(
                inputVolume, entry.model, options, labels=modelLabels, outputSegmentation=outputSegmentation,
                replaceExisting=replaceExisting, roi=roi, runner=runnerFactory(), createSurface=createSurface,
                onLog=onLog, onProgress=onProgress,
            )  # fmt: skip

        download = None
        if not entry.available:
            download = lambda: self.startDownload(entry, runnerFactory(), onLog=onLog, onProgress=onProgress)  # noqa: E731
        steps = RunSteps(
            download=download,
            read=lambda: self.startModelDescription(entry.model, runner=runnerFactory()),
            segment=segment,
        )
        return ModelRun(entry, steps, labels=labels if entry.available else None, onLog=onLog)

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
