"""The module's logic, importable with slicer-core alone (no qt, ctk or ScriptedLoadableModule).

``GASASegmenter.GASASegmenterLogic`` adds Slicer's parameter node on top of :class:`SegmenterLogic`.
Typical use from a script or test::

    logic = SegmenterLogic(scene)
    job = logic.startSegmentation(volumeNode, modelPath, SegmentationOptions(device="cpu"))
    logic.waitFor(job)          # or call job.poll() from a timer
    segmentationNode = job.segmentationNode
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import slicer

import GASACore

from .catalog import modelLabels
from .job import JobState, SegmentationJob, SegmentationOptions, _Target
from .processRunner import ProcessRunner, SubprocessRunner
from .volumeIO import cropBoxFromRoi, writeVolumeForEngine

__all__ = ["JobState", "SegmentationOptions", "SegmenterLogic", "engineCommand", "engineEnvironment"]

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


_GPU_CHECK = """
import json
report = {"torch": None, "cuda_built": None, "cuda_available": False, "devices": [], "reason": ""}
try:
    import torch
    report["torch"] = torch.__version__
    report["cuda_built"] = torch.version.cuda
    if torch.version.cuda is None:
        report["reason"] = "the installed torch " + torch.__version__ + " is a CPU-only build"
    elif not torch.cuda.is_available():
        report["reason"] = ("torch was built for CUDA " + str(torch.version.cuda)
                            + " but finds no usable GPU (no NVIDIA driver, or a driver too old for it)")
    else:
        report["cuda_available"] = True
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            report["devices"].append({"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                                      "capability": list(torch.cuda.get_device_capability(index))})
        arch = torch.cuda.get_arch_list()
        major, minor = torch.cuda.get_device_capability(0)
        if arch and not any(a.endswith(str(major) + str(minor)) for a in arch if a.startswith("sm_")):
            report["cuda_available"] = False
            report["reason"] = ("GPU compute capability " + str(major) + "." + str(minor)
                                + " is not supported by this torch build (" + ", ".join(arch)
                                + "); install a newer torch with the PyTorch extension")
except Exception as err:
    report["reason"] = "torch cannot be imported: " + type(err).__name__ + ": " + str(err)
print(json.dumps(report))
"""


class SegmenterLogic:
    """Segment a volume node with a GASA / nnU-Net v2 model in a background engine process."""

    def __init__(self, scene: slicer.vtkMRMLScene | None = None) -> None:
        self._scene = scene

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
        options: SegmentationOptions | None = None,
        *,
        outputSegmentation: slicer.vtkMRMLSegmentationNode | None = None,
        replaceExisting: bool = False,
        roi: slicer.vtkMRMLNode | None = None,
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
        options = options or SegmentationOptions()
        modelPath = Path(modelPath)
        labels = modelLabels(modelPath)
        cropBox = cropBoxFromRoi(inputVolume, roi) if roi is not None else None
        tempDir = Path(tempfile.mkdtemp(prefix="GASASegmenter-", dir=self.temporaryRoot()))
        try:
            inputPath, outputPath = tempDir / "input.nrrd", tempDir / "labels.nrrd"
            writtenIjkToRas = writeVolumeForEngine(inputVolume, inputPath, cropBox)
        except BaseException:
            shutil.rmtree(tempDir, ignore_errors=True)
            raise
        command = [
            *engineCommand(),
            str(inputPath),
            "-o",
            str(outputPath),
            "-m",
            str(modelPath),
            *options.engineArguments(),
            "--progress",
            "json",
        ]
        name = f"{inputVolume.GetName()} segmentation"
        target = _Target(existingNode=outputSegmentation, name=name, createSurface=createSurface)
        return SegmentationJob(
            scene=self.scene,
            runner=runner or SubprocessRunner(),
            command=command,
            env=engineEnvironment(),
            tempDir=tempDir,
            outputPath=outputPath,
            inputVolume=inputVolume,
            writtenIjkToRas=writtenIjkToRas,
            cropBox=cropBox,
            labels=labels,
            target=target,
            onLog=onLog,
            onProgress=onProgress,
        )

    @staticmethod
    def waitFor(job: SegmentationJob, timeout: float | None = None, interval: float = 0.1) -> JobState:
        """Poll ``job`` until it finishes (scripts and tests); cancels it after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not job.poll():
            if deadline is not None and time.monotonic() > deadline:
                job.cancel()
                break
            time.sleep(interval)
        return job.state

    def segment(
        self,
        inputVolume: slicer.vtkMRMLScalarVolumeNode,
        modelPath: str | Path,
        options: SegmentationOptions | None = None,
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

    @staticmethod
    def checkGpu(timeout: float = 120.0) -> dict:
        """Ask the engine's Python whether CUDA is usable, and if not, why (in a separate process).

        Returns:
            ``{"torch": version|None, "cuda_built": str|None, "cuda_available": bool, "devices": [...],
            "reason": str}``.
        """
        try:
            result = subprocess.run(
                [pythonExecutable(), "-c", _GPU_CHECK],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=engineEnvironment(),
                check=False,
            )
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as err:
            return {"torch": None, "cuda_built": None, "cuda_available": False, "devices": [], "reason": str(err)}

    @staticmethod
    def describeGpu(report: dict) -> str:
        """One line for the user from :meth:`checkGpu`'s report."""
        if report.get("cuda_available"):
            devices = ", ".join(f"{d['name']} ({d['memory_gb']} GB)" for d in report.get("devices", []))
            return f"CUDA is usable: {devices} (torch {report.get('torch')})"
        return f"CUDA is not usable: {report.get('reason') or 'unknown reason'}; segmentation will run on the CPU"


def foldsFromText(text: str) -> list[str]:
    """``"0 1, 2"`` -> ``["0", "1", "2"]``; ``""`` or ``"all"`` -> ``[]`` (every fold)."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts or parts == ["all"]:
        return []
    return parts


__all__ += ["foldsFromText", "pythonExecutable"]
