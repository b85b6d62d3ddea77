"""Logic and widgets of the GASASegmenter Slicer module.

Modules importable with slicer-core alone (no qt, ctk or ScriptedLoadableModule): ``progress``,
``processRunner``, ``volumeIO``, ``segmentationBuilder``, ``job``, ``catalog``, ``logic``,
``dependencies``. The Qt parts (``qtProcessRunner``, ``widget``, ``selfTest``) are imported by
``GASASegmenter.py`` inside the application only.
"""
