"""From a trained model and a sequence to detections: probability maps, calibration, candidates, blob scoring.

Import rule: ``sodinn.detect`` imports the base modules, ``sodinn.config``, ``sodinn.adi``,
``sodinn.mlar`` and ``sodinn.learn``. It writes no files and draws no figures.
"""
