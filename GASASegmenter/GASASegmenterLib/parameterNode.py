"""The module's parameter node (its UI state, saved with the scene) and the Slicer logic that hands it out.

Application only (``slicer.parameterNodeWrapper`` and ``ScriptedLoadableModule``). The widget imports
from here, and ``GASASegmenter.py`` re-exports :class:`GASASegmenterLogic`: nothing imports back up.
"""

from __future__ import annotations

from typing import Annotated

import slicer
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from GASACore.options import DeviceKind, FoldSelection, SegmentOptions

from .logic import SegmenterLogic

__all__ = ["GASASegmenterLogic", "GASASegmenterParameterNode", "segmentOptionsFrom"]


@parameterNodeWrapper
class GASASegmenterParameterNode:
    """UI state. Every field but ``modelKey`` is bound to its .ui widget through ``SlicerParameterName``.

    ``modelKey`` is the selected model's :attr:`GASASegmenterLib.catalog.ModelEntry.key` (``ID@VERSION`` or
    ``imported:<folder>``: unlike its title, it stays the same once the model is downloaded); the panel keeps
    it and the model selector in step itself, because the selector's items (catalogue and imported models)
    change at run time, which a bound combo box (whose items are fixed ``Choice`` values) cannot show.

    ``offline`` is :attr:`GASACore.options.SegmentOptions.offline`: never download (a model that is not here
    cannot be used until it is imported or Offline is unticked; the engine never opens a socket).

    ``folds`` is the text of the folds field: empty for every fold of the model, or names such as ``0 1 2``
    (``all`` names nnU-Net's ``fold_all`` folder); :class:`GASACore.options.FoldSelection` parses it.
    """

    inputVolume: slicer.vtkMRMLScalarVolumeNode
    modelKey: str = ""
    device: Annotated[str, Choice(list(DeviceKind.values()))] = DeviceKind.AUTO.value
    tta: bool = True
    folds: str = ""
    stepSize: Annotated[float, WithinRange(0.1, 1.0)] = 0.5
    fast: bool = False
    offline: bool = False
    roi: slicer.vtkMRMLMarkupsROINode
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    replaceExisting: bool = False


def segmentOptionsFrom(parameters: GASASegmenterParameterNode) -> SegmentOptions:
    """The engine options the panel shows.

    Raises:
        GASACore.options.OptionError: a value the engine would refuse (e.g. a malformed fold name).
    """
    return SegmentOptions(
        device=parameters.device,
        folds=FoldSelection.parse(parameters.folds),
        tta=parameters.tta,
        step_size=parameters.stepSize,
        fast=parameters.fast,
        offline=parameters.offline,
    )


class GASASegmenterLogic(ScriptedLoadableModuleLogic, SegmenterLogic):
    """:class:`~GASASegmenterLib.logic.SegmenterLogic` with Slicer's parameter node, on ``slicer.mrmlScene``."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        SegmenterLogic.__init__(self, scene=None)

    def getParameterNode(self) -> GASASegmenterParameterNode:
        return GASASegmenterParameterNode(super().getParameterNode())
