"""Logic and widgets of the GASASegmenter Slicer module.

Modules importable with slicer-core alone and without torch (no qt, ctk or ScriptedLoadableModule):
``processRunner``, ``processTree``, ``backgroundProcess``, ``engineQuery``, ``volumeIO``,
``segmentationBuilder``, ``job``, ``catalog``, ``modelDownload``, ``modelRun``, ``logic``, ``dependencies``,
``panelState``, ``resultChecks``, ``compatibility``, and ``qtProcessRunner`` (it imports ``qt`` only when it
starts a process). The application-only parts (``parameterNode``, ``modelSelector``, ``widget``,
``selfTest``) are imported by ``GASASegmenter.py`` inside the application only. Options, progress events,
the device check, model descriptions and the model catalogue with its downloads are the engine's
(``GASACore.options``, ``GASACore.events``, ``--check-device``, ``--describe-model``, ``GASACore.models``
and ``gasa-models``). ``compatibility`` (and this file) keep to Python 3.9 syntax, so that an older Slicer
can say why the module does not run.
"""
