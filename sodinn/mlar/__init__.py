"""Labeled MLAR samples (SPEC §2-3): the annulus operator, C+/C- samples, augmentation, the HDF5 store, the S/N oracle.

Import rule: ``sodinn.mlar`` imports the package root's base modules, ``sodinn.config`` and
``sodinn.adi``; Keras only inside :mod:`sodinn.mlar.linalg`'s optional ``"keras"`` path (eigen-
decompositions on an accelerator).
"""
