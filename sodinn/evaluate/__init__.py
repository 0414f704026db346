"""Evaluation on injected copies: one copy runner and cache, ROC curves, contrast curves, detection limits.

Import rule: ``sodinn.evaluate`` imports everything before it (base modules, ``config``, ``adi``,
``mlar``, ``learn``, ``detect``), never ``pipeline`` or ``cli``. It caches maps (so that long runs
resume) but writes no report and draws no figure: :mod:`sodinn.pipeline` does.
"""
