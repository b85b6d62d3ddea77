"""GASASegmenter: segment abdominal CT with GASA-UNet / nnU-Net v2 models in 3D Slicer.

Module (this file), Widget (``GASASegmenterLib/widget.py``), Logic (``GASASegmenterLib/logic.py``, importable
with slicer-core alone; with the parameter node in ``GASASegmenterLib/parameterNode.py``) and the self-test
(``GASASegmenterLib/selfTest.py``). The library never imports this file.

In a Slicer older than the one supported (``GASASegmenterLib/compatibility.py``) the module still loads and
its panel says what is needed; this file therefore keeps to Python 3.9 syntax.
"""

from __future__ import annotations

import logging

import slicer
from GASASegmenterLib.compatibility import unsupportedMessage
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

__all__ = ["GASASegmenter", "GASASegmenterLogic", "GASASegmenterTest", "GASASegmenterWidget"]

logger = logging.getLogger(__name__)

CONTRIBUTORS = ["GASASegmenter developers (GASASegmenter project)"]


def _runningSlicer():
    app = getattr(slicer, "app", None)
    return (int(app.majorVersion), int(app.minorVersion)) if app is not None else None


UNSUPPORTED = unsupportedMessage(slicerVersion=_runningSlicer())

if UNSUPPORTED:
    logger.error("%s", UNSUPPORTED)

    class GASASegmenterWidget(ScriptedLoadableModuleWidget):
        """Says why the module cannot run in this Slicer."""

        def setup(self) -> None:
            ScriptedLoadableModuleWidget.setup(self)
            import qt

            label = qt.QLabel(UNSUPPORTED)
            label.wordWrap = True
            self.layout.addWidget(label)
            self.layout.addStretch(1)

    class GASASegmenterLogic(ScriptedLoadableModuleLogic):
        """No logic in an unsupported Slicer."""

    class GASASegmenterTest(ScriptedLoadableModuleTest):
        def runTest(self) -> None:
            raise RuntimeError(UNSUPPORTED)

else:
    from GASASegmenterLib.parameterNode import GASASegmenterLogic
    from GASASegmenterLib.selfTest import GASASegmenterTest
    from GASASegmenterLib.widget import GASASegmenterWidget


class GASASegmenter(ScriptedLoadableModule):
    """Module description shown by Slicer."""

    def __init__(self, parent) -> None:
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "GASA Segmenter"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["Segmentations", "Terminologies", "SubjectHierarchy"]
        self.parent.contributors = list(CONTRIBUTORS)
        self.parent.helpText = (
            "Segments abdominal organs (BTCV / AMOS label sets) or kidney, tumour and cyst (KiTS23) in CT with "
            "GASA-UNet, or with any nnU-Net v2 model. The model runs in a background process: the application "
            "stays responsive, and Cancel stops it. Needs 3D Slicer 5.10 or newer. The extension's README.md "
            "describes the first run, offline installation, where results go and the self-test."
        )
        if UNSUPPORTED:
            self.parent.helpText += f"<p><b>{UNSUPPORTED}</b></p>"
        self.parent.acknowledgementText = (
            "GASA-UNet (Global Axial Self-Attention U-Net) built on nnU-Net v2 and dynamic-network-architectures."
        )
