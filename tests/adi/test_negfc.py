"""Negative fake companion astrometry: recovery of injected companions, the merit, errors, and vip-hci on NACO."""

import numpy as np
import pytest

from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.negfc import negfc_merit, negfc_simplex
from sodinn.datasets import make_adi_sequence

SEP_PX, THETA_DEG, FLUX = 15.0, 60.0, 4000.0


@pytest.fixture(scope="module")
def speckles():
    """Speckle-dominated synthetic sequence (30 frames, 51 px) with one companion at S/N ~14 in annular PCA-ADI."""
    seq = make_adi_sequence(n_frames=30, size_px=51, seed=0)
    cube = cube_inject_companions(seq.cube, seq.psf, seq.angles_deg, sep_px=SEP_PX, theta_deg=THETA_DEG, flux=FLUX)
    return seq, cube


def test_negfc_recovers_an_injected_companion_from_an_offset_guess(speckles):
    seq, cube = speckles
    fit = negfc_simplex(cube, seq.angles_deg, seq.psf, seq.fwhm_px, sep_px=SEP_PX + 0.6, theta_deg=THETA_DEG - 2.0,
                        flux=0.75 * FLUX, ncomp=5)
    x = 25 + SEP_PX * np.cos(np.radians(THETA_DEG))
    y = 25 + SEP_PX * np.sin(np.radians(THETA_DEG))
    start_error = np.hypot(0.6, np.radians(2.0) * SEP_PX)  # 0.80 px
    assert fit.converged and fit.merit < fit.merit_start
    # S/N ~14: the speckles, not the optimiser, set the error (1/14 of the flux, a tenth of the FWHM)
    assert np.hypot(fit.x - x, fit.y - y) < 0.2 < start_error / 3
    assert fit.flux == pytest.approx(FLUX, rel=0.1)
    assert fit.sep_px == pytest.approx(np.hypot(fit.x - 25, fit.y - 25))


def test_negfc_merit_is_lowest_with_the_companion_removed(speckles):
    seq, cube = speckles
    guess = {"guess_sep_px": SEP_PX, "guess_theta_deg": THETA_DEG, "ncomp": 5}

    def merit(sep, theta, flux, kind="chi2"):
        return negfc_merit(cube, seq.angles_deg, seq.psf, seq.fwhm_px, sep_px=sep, theta_deg=theta, flux=flux,
                           merit=kind, **guess)

    for kind in ("chi2", "sum"):
        best = merit(SEP_PX, THETA_DEG, FLUX, kind)
        assert best < merit(SEP_PX, THETA_DEG, 0.0, kind) / 3  # the companion left in the aperture
        assert best < merit(SEP_PX + 1.0, THETA_DEG, FLUX, kind)
        assert best < merit(SEP_PX, THETA_DEG + 5.0, FLUX, kind)
    # a chi-square against the noise of the data's own reduction: about 1 once the companion is removed
    assert 0.3 < merit(SEP_PX, THETA_DEG, FLUX) < 3
    assert merit(40.0, THETA_DEG, FLUX) == np.inf  # outside the cropped frames


def test_negfc_refuses_what_it_cannot_fit(speckles):
    seq, cube = speckles
    args = (cube, seq.angles_deg, seq.psf, seq.fwhm_px)
    with pytest.raises(ValueError, match="flux must not be 0"):
        negfc_simplex(*args, sep_px=SEP_PX, theta_deg=THETA_DEG, flux=0.0, ncomp=5)
    with pytest.raises(ValueError, match="too close to the edge"):
        negfc_simplex(*args, sep_px=20.0, theta_deg=THETA_DEG, flux=FLUX, ncomp=5)
    with pytest.raises(ValueError, match="merit"):
        negfc_merit(*args, sep_px=SEP_PX, theta_deg=THETA_DEG, flux=FLUX, ncomp=5, merit="hessian")
    with pytest.raises(ValueError, match="sep_px"):
        negfc_simplex(*args, sep_px=-3.0, theta_deg=THETA_DEG, flux=FLUX, ncomp=5)
    with pytest.raises(TypeError, match="ncomp"):
        negfc_simplex(*args, sep_px=SEP_PX, theta_deg=THETA_DEG, flux=FLUX, ncomp=2.5)


@pytest.mark.slow
def test_negfc_matches_vip_on_naco_beta_pic_b(naco, vip):
    """beta Pic b by NEGFC, sodinn against vip-hci's firstguess, same PSF, PCA and interpolation (~2 min)."""
    import warnings

    psf = naco.psf_normalized
    common = {"ncomp": 10, "fwhm": naco.fwhm_px, "annulus_width": 4 * naco.fwhm_px, "aperture_radius": 2}
    # vip-hci's default algorithm (pca_annulus: plain PCA on one annulus) with cubic-spline shifts and rotations
    with warnings.catch_warnings():  # vip-hci's own (deprecations, missing OpenCV) are not under test
        warnings.simplefilter("ignore")
        ref = vip.fm.firstguess(naco.cube, naco.angles_deg, psf, planets_xy_coord=[(62, 63)], imlib="skimage",
                                interpolation="bicubic", simplex=True, plot=False, verbose=False,
                                simplex_options={"xatol": 1e-2, "fatol": 1e-3, "maxfev": 400}, **common)
    sep_vip, theta_vip, flux_vip = ref[0][0], ref[1][0], ref[2][0]
    fit = negfc_simplex(naco.cube, naco.angles_deg, psf, naco.fwhm_px, sep_px=17.83, theta_deg=46.6, flux=666.0,
                        ncomp=10, delta_rot=None, injection="spline", order=3)
    assert fit.converged
    x_vip = 50 + sep_vip * np.cos(np.radians(theta_vip))
    y_vip = 50 + sep_vip * np.sin(np.radians(theta_vip))
    # measured: 0.02 px and 0.4 % apart (sep 17.750 / 17.760 px, flux 630.0 / 632.5)
    assert np.hypot(fit.x - x_vip, fit.y - y_vip) < 0.1
    assert fit.flux == pytest.approx(flux_vip, rel=0.02)
