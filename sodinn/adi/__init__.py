"""The classical ADI core: FITS I/O, the sequence, geometry, rotation, PSF, injection, PCA, S/N, baselines, binning.

Import rule: ``sodinn.adi`` imports only the package root's base modules (``exceptions``,
``_validation``, ``_atomic``, ``_version``) and its own modules; never Keras, nothing of the stages
after it. Conventions are VIP's (SPEC §1): angles counter-clockwise from +x, the star on pixel
``(N-1)/2`` (odd N) or ``N/2`` (even N), derotation by +PA.
"""
