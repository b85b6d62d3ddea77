"""The module's self-test in the real application: the bundled model on the bundled CT.

Run it from Slicer's Reload & Test button, from ctest (``py_GASASegmenter``), or headless::

    Slicer --no-main-window --python-code "slicer.util.selectModule('GASASegmenter'); \
slicer.modules.gasasegmenter.widgetRepresentation().self().onReloadAndTest(); slicer.util.exit()"
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from .catalog import loadCatalog, modelLabels, resolveModelPath
from .logic import SegmenterLogic, SegmentOptions
from .volumeIO import ijkToRasArray

__all__ = ["GASASegmenterTest", "bundledSampleCt"]

DEMO_MODEL_ID = "gasa-demo-btcv"


def bundledSampleCt() -> Path:
    """The sample CT shipped with the extension (``Resources/SampleData``), or the source tree's shared data."""
    moduleDir = Path(__file__).resolve().parents[1]
    for root in (moduleDir, moduleDir.parent, moduleDir.parent.parent / "shared" / "data"):
        for relative in (
            "Resources/SampleData/example_ct.nii.gz",
            "Resources/SampleData/totalsegmentator/example_ct.nii.gz",
            "totalsegmentator/example_ct.nii.gz",
        ):
            candidate = root / relative
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"the sample CT is not installed next to {moduleDir}")


class GASASegmenterTest(ScriptedLoadableModuleTest):
    """Segments the bundled CT with the bundled demo model and checks segments and geometry."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_DemoModelOnSampleCt()
        self.setUp()
        self.test_CancelLeavesScene()

    def _inputs(self):
        entry = next(e for e in loadCatalog() if e.id == DEMO_MODEL_ID)
        modelPath = resolveModelPath(entry)
        volume = slicer.util.loadVolume(str(bundledSampleCt()))
        return modelPath, volume

    def test_DemoModelOnSampleCt(self) -> None:
        self.delayDisplay("Segmenting the sample CT with the demo model")
        modelPath, volume = self._inputs()
        labels = modelLabels(modelPath)
        options = SegmentOptions(device="auto", tta=False, fast=True)
        node = SegmenterLogic().segment(volume, modelPath, options)
        segmentation = node.GetSegmentation()
        self.assertEqual(segmentation.GetNumberOfSegments(), len(labels))
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        self.assertEqual(names, [label.name for label in labels])
        self.assertIn("SCT^", segmentation.GetNthSegment(0).GetTerminology())
        reference = node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole())
        self.assertEqual(reference.GetID(), volume.GetID())
        liverId = segmentation.GetSegmentIdBySegmentName("liver")
        if liverId:
            liver = slicer.util.arrayFromSegmentBinaryLabelmap(node, liverId, volume)
            self.assertEqual(liver.shape, slicer.util.arrayFromVolume(volume).shape)
            self.assertGreater(int(liver.sum()), 1000, "the demo model should find the liver in the sample CT")
        labelmap = segmentation.GetNthSegment(0).GetRepresentation("Binary labelmap")
        matrix = vtk.vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(matrix)
        self.assertTrue(np.allclose(slicer.util.arrayFromVTKMatrix(matrix), ijkToRasArray(volume), atol=1e-4))
        self.delayDisplay("Demo model test passed")

    def test_CancelLeavesScene(self) -> None:
        self.delayDisplay("Cancelling a segmentation")
        modelPath, volume = self._inputs()
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
        logic = SegmenterLogic()
        job = logic.startSegmentation(volume, modelPath, SegmentOptions(device="cpu"))
        for _ in range(600):
            if job.poll() or job.stage == "predict":
                break
            slicer.app.processEvents()
            time.sleep(0.05)
        self.assertFalse(job.finished, f"the engine ended before it could be cancelled: {job.message}")
        job.cancel()
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)
        self.assertFalse(job.tempDir.exists())
        self.delayDisplay("Cancel test passed")
