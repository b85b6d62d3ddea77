"""Logic and widgets of the GASASegmenter Slicer module.

Modules importable with slicer-core alone and without torch (no qt, ctk or ScriptedLoadableModule):
``processRunner``, ``engineQuery``, ``volumeIO``, ``segmentationBuilder``, ``job``, ``catalog``, ``logic``,
``dependencies``. The application-only parts (``parameterNode``, ``qtProcessRunner``, ``widget``,
``selfTest``) are imported by ``GASASegmenter.py`` inside the application only. Options, progress events
and the device check are the engine's (``GASACore.options``, ``GASACore.events``, ``--check-device``).
"""
