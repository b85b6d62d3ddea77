"""GASASegmenter: segment abdominal CT with GASA-UNet / nnU-Net v2 models in 3D Slicer.

Module (this file), Widget (``GASASegmenterLib/widget.py``), Logic (``GASASegmenterLib/logic.py``, importable
with slicer-core alone; with the parameter node in ``GASASegmenterLib/parameterNode.py``) and the self-test
(``GASASegmenterLib/selfTest.py``). The library never imports this file.
"""

from __future__ import annotations

import logging

from GASASegmenterLib.parameterNode import GASASegmenterLogic
from GASASegmenterLib.selfTest import GASASegmenterTest
from GASASegmenterLib.widget import GASASegmenterWidget
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

__all__ = ["GASASegmenter", "GASASegmenterLogic", "GASASegmenterTest", "GASASegmenterWidget"]

logger = logging.getLogger(__name__)


class GASASegmenter(ScriptedLoadableModule):
    """Module description shown by Slicer."""

    def __init__(self, parent) -> None:
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "GASA Segmenter"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["Segmentations", "Terminologies"]
        self.parent.contributors = ["GASASegmenter developers"]
        self.parent.helpText = (
            "Segments abdominal organs (BTCV / AMOS label sets) or kidney, tumour and cyst (KiTS23) in CT with "
            "GASA-UNet, or with any nnU-Net v2 model. The model runs in a background process: the application "
            "stays responsive, and Cancel stops it. "
            '<a href="https://github.com/gasasegmenter/GASASegmenter/blob/main/GASASegmenter/README.md">Documentation</a>.'
        )
        self.parent.acknowledgementText = (
            "GASA-UNet (Global Axial Self-Attention U-Net) built on nnU-Net v2 and dynamic-network-architectures."
        )
