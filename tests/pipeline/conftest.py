"""Shared fixtures of the product tests: a tiny synthetic sequence and its tiny sample file (made once a session)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The shipped model (ConvLSTM, K=10 ranks, 9x9 px patches), trained on the data of ``sodinn demo`` (FWHM 4 px)
SHIPPED_MODEL = REPO / "models" / "synthetic-sodinn-k10-p9"
#: A configuration small enough for a sample file in a few seconds: 3 annuli x 6 samples of each class
TINY_SAMPLES = dict(patch_px=9, n_ranks=4, samples_per_annulus=6, oracle_azimuths=1)
TINY_DATA = {"cube": "cube.fits", "fwhm_px": 4.0, "pixel_scale_arcsec": 0.0272}


@pytest.fixture(scope="session")
def tiny_sequence():
    """A 20-frame 45x45 px synthetic ADI sequence (FWHM 4 px), no companion."""
    from sodinn.adi.sequence import ADISequence
    from sodinn.datasets import make_adi_sequence

    s = make_adi_sequence(n_frames=20, size_px=45, fwhm_px=4.0, seed=1)
    return ADISequence(s.cube, s.angles_deg, s.psf, s.fwhm_px, s.pixel_scale_arcsec)


@pytest.fixture(scope="session")
def tiny_samples(tiny_sequence, tmp_path_factory):
    """The sample file of :func:`tiny_sequence` with :data:`TINY_SAMPLES`, written by ``write_sample_file``."""
    from sodinn.config import SampleConfig
    from sodinn.pipeline.samples import write_sample_file

    path = tmp_path_factory.mktemp("samples") / "tiny.h5"
    return write_sample_file(tiny_sequence, SampleConfig(**TINY_SAMPLES), path, data=TINY_DATA, n_jobs=1,
                             progress=False)
