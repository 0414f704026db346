"""Fixtures shared by the command-line tests: a tiny project (FITS files, a configuration, its samples)."""

import pytest

from sodinn.cli import main


@pytest.fixture(scope="package")
def tiny_project(tmp_path_factory):
    """A small synthetic sequence as FITS files, a configuration naming it (relative paths) and its samples.

    Made once for the command-line tests; they may add outputs under ``out/`` but never change the samples.
    """
    from sodinn.adi.io import write_fits
    from sodinn.datasets import make_adi_sequence

    root = tmp_path_factory.mktemp("project")
    data = make_adi_sequence(n_frames=20, size_px=49, fwhm_px=4.0, seed=2)
    for name, arr in (("cube", data.cube), ("angles", data.angles_deg), ("psf", data.psf)):
        write_fits(root / "data" / f"{name}.fits", arr)
    config = root / "configs" / "tiny.toml"
    config.parent.mkdir()
    config.write_text(
        '[data]\ncube = "../data/cube.fits"\nangles = "../data/angles.fits"\npsf = "../data/psf.fits"\n'
        "fwhm_px = 4.0\npixel_scale_arcsec = 0.0272\n"
        "[samples]\npatch_px = 9\nn_ranks = 6\nsamples_per_annulus = 40\noracle_azimuths = 1\nseed = 1\n"
        'output = "../out/samples.h5"\n'
        '[train]\nmodel = "sodirf"\nseed = 1\noutput = "../out/model"\n'
        '[predict]\nthreshold = 0.95\noutput = "../out/predict"\n'
    )
    assert main(["samples", "--config", str(config), "-j", "1", "--quiet"]) == 0
    return config
