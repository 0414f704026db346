"""Models and training (SPEC §4): the model registry, training on sample files, and the model folder (artefact).

Import rule: ``sodinn.learn`` imports the base modules, ``sodinn.config``, ``sodinn.adi`` and
``sodinn.mlar``; it is where Keras is imported (always inside functions, so that importing it stays
light). :mod:`sodinn.learn.artifact` alone knows the model folder's format.
"""
