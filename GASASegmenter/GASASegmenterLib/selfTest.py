"""The module's self-test in the real application: it drives the panel like a user, with the bundled model.

It selects the bundled sample CT and the bundled demo model, clicks Segment and waits, clicks Segment and
then Cancel mid-run, and clicks Segment again: every run goes through the panel's QProcess runner and
timer. It asserts segments, names, terminology, geometry, the subject hierarchy, that Cancel leaves no
process and no node, that the second run makes a second segmentation, and that each organ the model is
expected to find has a plausible volume (``Resources/SelfTest/expectedOrgans.json``, shared with pytest).
It installs nothing: with packages missing it fails and says what to install.

Run it from the command line (exit code 0 when it passes)::

    Slicer --no-main-window --no-splash --python-code \
"from GASASegmenterLib.selfTest import runSelfTest; slicer.util.exit(runSelfTest())"

or from ctest (``py_GASASegmenter``), or with Reload and Test in developer mode.
"""

from __future__ import annotations

import logging
import time
import unittest
from collections.abc import Callable
from pathlib import Path

import numpy as np
import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from GASACore.labels import Label, terminology_entry

from . import dependencies
from .catalog import catalogModels, labelsFromDescription
from .job import JobState
from .processTree import isProcessAlive
from .resultChecks import loadExpectations, organVolumeProblems, segmentVolumesMl
from .volumeIO import ijkToRasArray

__all__ = ["GASASegmenterTest", "bundledSampleCt", "runSelfTest"]

logger = logging.getLogger(__name__)

#: Longest wait for one run of the demo model on a CPU (s).
RUN_TIMEOUT_S = 900


def bundledSampleCt(name: str = "example_ct.nii.gz") -> Path:
    """The sample CT shipped with the extension (``Resources/SampleData``), or the source tree's shared data."""
    moduleDir = Path(__file__).resolve().parents[1]
    for root in (moduleDir, moduleDir.parent, moduleDir.parent.parent / "shared" / "data"):
        for relative in (f"Resources/SampleData/{name}", f"Resources/SampleData/totalsegmentator/{name}",
                         f"totalsegmentator/{name}"):  # fmt: skip
            candidate = root / relative
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"the sample CT {name} is not installed next to {moduleDir}")


def _waitFor(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Let the application run (its timers poll the engine) until ``condition()``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        slicer.app.processEvents()
        time.sleep(0.05)


class GASASegmenterTest(ScriptedLoadableModuleTest):
    """Segment, Cancel and Segment again through the panel; checks results against the expectation table."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_SegmentCancelSegmentAgainThroughThePanel()

    def _panel(self):
        missing = dependencies.missingPackages()
        if missing:
            raise AssertionError(
                f"the self-test installs nothing, and {', '.join(missing)} are missing: open GASA Segmenter and click "
                "Segment once (it asks, then installs), or install them offline as the module's README describes"
            )
        widget = slicer.util.getModuleWidget("GASASegmenter")
        widget.enter()
        return widget

    def _chooseInputs(self, widget, expectations):
        volume = slicer.util.loadVolume(str(bundledSampleCt(expectations.sample)))
        entry = next(e for e in catalogModels() if e.id == expectations.modelId)
        parameters = widget.logic.getParameterNode()
        parameters.inputVolume = volume
        parameters.outputSegmentation = None
        parameters.replaceExisting = False
        parameters.roi = None
        parameters.device = str(expectations.options.get("device", "auto"))
        parameters.tta = bool(expectations.options.get("tta", False))
        parameters.fast = False
        parameters.folds = ""
        widget.ui.modelComboBox.currentIndex = widget.ui.modelComboBox.findData(entry.key)
        _waitFor(lambda: widget.ui.segmentButton.enabled, 300, f"the panel to read {entry.title}")
        return volume, entry

    def _segment(self, widget) -> object:
        widget.ui.segmentButton.click()
        job = widget.job
        self.assertIsNotNone(job, "Segment started no job")
        self.assertEqual(widget.ui.segmentButton.text, "Cancel")
        return job

    def test_SegmentCancelSegmentAgainThroughThePanel(self) -> None:
        expectations = loadExpectations()
        widget = self._panel()
        volume, entry = self._chooseInputs(widget, expectations)
        labels = labelsFromDescription(widget.modelDescription(entry))

        self.delayDisplay("Segment: the demo model on the sample CT")
        job = self._segment(widget)
        _waitFor(lambda: job.finished, RUN_TIMEOUT_S, "the segmentation")
        self.assertEqual(job.state, JobState.SUCCEEDED, job.message)
        first = job.segmentationNode
        self._checkSegments(first, volume, labels)
        problems = organVolumeProblems(segmentVolumesMl(first), expectations)
        self.assertEqual(problems, [], f"organ volumes of {entry.title}")

        self.delayDisplay("Segment, then Cancel while the model runs")
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
        job = self._segment(widget)
        _waitFor(lambda: job.stage == "predict" or job.finished, RUN_TIMEOUT_S, "the prediction to start")
        self.assertFalse(job.finished, f"the run ended before it could be cancelled: {job.message}")
        pids = [pid for pid in (job.runner.pid, job.process.enginePid) if pid]
        started = time.monotonic()
        widget.ui.segmentButton.click()
        _waitFor(lambda: job.finished, 10, "the engine to stop")
        self.assertEqual(job.state, JobState.CANCELLED)
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertEqual([pid for pid in pids if isProcessAlive(pid)], [])
        self.assertFalse(job.tempDir.exists())
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)

        self.delayDisplay("Segment again: a second segmentation")
        job = self._segment(widget)
        _waitFor(lambda: job.finished, RUN_TIMEOUT_S, "the second segmentation")
        self.assertEqual(job.state, JobState.SUCCEEDED, job.message)
        self.assertIsNot(job.segmentationNode, first)
        self.assertEqual(len(slicer.util.getNodesByClass("vtkMRMLSegmentationNode")), 2)
        self._checkSegments(job.segmentationNode, volume, labels)
        self.delayDisplay("Self-test passed")

    def _checkSegments(self, node, volume, labels: tuple[Label, ...]) -> None:
        segmentation = node.GetSegmentation()
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        self.assertEqual(names, [label.name for label in labels])
        for index, label in enumerate(labels):
            self.assertEqual(segmentation.GetNthSegment(index).GetTerminology(), terminology_entry(label))
        reference = node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole())
        self.assertEqual(reference.GetID(), volume.GetID())
        labelmap = segmentation.GetNthSegment(0).GetRepresentation("Binary labelmap")
        matrix = vtk.vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(matrix)
        self.assertTrue(np.allclose(slicer.util.arrayFromVTKMatrix(matrix), ijkToRasArray(volume), atol=1e-4))
        hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        self.assertEqual(
            hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node)),
            hierarchy.GetItemParent(hierarchy.GetItemByDataNode(volume)),
            "the result sits next to its volume in the subject hierarchy",
        )


def runSelfTest() -> int:
    """Run the self-test and return the process exit code (0: passed); for ``Slicer --python-code``."""
    suite = unittest.TestSuite([GASASegmenterTest("test_SegmentCancelSegmentAgainThroughThePanel")])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1
