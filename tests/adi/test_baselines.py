import numpy as np
import pytest

from sodinn.adi.baselines import median_adi, pca_adi, pca_annular
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.snr import snr

from ..conftest import gaussian_psf


def _fov(shape, radius):
    return np.hypot(*(np.indices(shape) - shape[0] // 2)) < radius


@pytest.mark.parametrize(("ncomp", "scaling"), [(10, "temp-mean"), (5, None)])
def test_pca_adi_matches_vip(naco, vip, ncomp, scaling):
    ours = pca_adi(naco.cube, naco.angles_deg, ncomp=ncomp, scaling=scaling)
    ref = vip.psfsub.pca(
        np.array(naco.cube), naco.angles_deg, ncomp=ncomp, scaling=scaling,
        imlib="skimage", interpolation="bilinear", verbose=False,
    )
    fov = _fov(ours.shape, 48)
    assert np.abs(ours - ref)[fov].max() <= 1e-5 * np.abs(ref[fov]).max()


def test_pca_adi_ncomp_from_cevr_matches_vip(naco, vip):
    ours = pca_adi(naco.cube, naco.angles_deg, cevr=0.9, scaling="temp-mean")
    ref = vip.psfsub.pca(
        np.array(naco.cube), naco.angles_deg, ncomp=0.9, scaling="temp-mean",
        imlib="skimage", interpolation="bilinear", verbose=False,
    )
    fov = _fov(ours.shape, 48)
    assert np.abs(ours - ref)[fov].max() <= 1e-5 * np.abs(ref[fov]).max()


def test_pca_annular_matches_vip(naco, vip):
    fwhm = naco.fwhm_px
    ours = pca_annular(naco.cube, naco.angles_deg, fwhm, ncomp=10)
    ref = vip.psfsub.pca_annular(
        np.array(naco.cube), naco.angles_deg, fwhm=fwhm, asize=fwhm, ncomp=10,
        imlib="skimage", interpolation="bilinear", verbose=False,
    )
    # VIP shifts its last annulus 1 px inwards (overlapping the previous one); compare inside it
    last_inner = (int(naco.frame_size / 2 / fwhm) - 1) * fwhm - 1
    fov = _fov(ours.shape, last_inner - 1.5)
    assert np.abs(ours - ref)[fov].max() <= 1e-6 * np.abs(ref[fov]).max()


def test_pca_annular_without_rotation_threshold_matches_vip(naco, vip):
    ours = pca_annular(naco.cube, naco.angles_deg, 4.8, ncomp=3, r_in_px=5, delta_rot=None, scaling="temp-mean")
    ref = vip.psfsub.pca_annular(
        np.array(naco.cube), naco.angles_deg, fwhm=4.8, asize=4.8, radius_int=5, ncomp=3, delta_rot=0,
        scaling="temp-mean", imlib="skimage", interpolation="bilinear", verbose=False,
    )
    fov = _fov(ours.shape, 38) & ~_fov(ours.shape, 7)
    assert np.abs(ours - ref)[fov].max() <= 1e-6 * np.abs(ref[fov]).max()


def test_median_adi_matches_vip(naco, vip):
    ours = median_adi(naco.cube, naco.angles_deg)
    ref = vip.psfsub.median_sub(np.array(naco.cube), naco.angles_deg, imlib="skimage", interpolation="bilinear", verbose=False)
    fov = _fov(ours.shape, 48)
    assert np.abs(ours - ref)[fov].max() <= 1e-6 * np.abs(ref[fov]).max()


def test_beta_pic_b_is_detected_by_pca_not_by_median_adi(naco):
    x, y = 62, 63
    median = snr(median_adi(naco.cube, naco.angles_deg), (x, y), naco.fwhm_px)
    full = snr(pca_adi(naco.cube, naco.angles_deg, ncomp=10), (x, y), naco.fwhm_px)
    annular = snr(pca_annular(naco.cube, naco.angles_deg, naco.fwhm_px, ncomp=10), (x, y), naco.fwhm_px)
    assert full > 8 and annular > 8  # data README: S/N about 11-18 depending on the reduction
    assert median < 4  # at 0.48", classical ADI leaves the planet in the speckles


@pytest.mark.parametrize("method", ["median", "pca", "annular"])
def test_injected_companion_recovered(small_cube, method):
    cube, angles = small_cube
    psf = gaussian_psf(9, 3.0)
    sep, theta = 11.0, 35.0
    cube = cube_inject_companions(cube, psf, angles, sep_px=sep, theta_deg=theta, flux=60.0)
    if method == "median":
        frame = median_adi(cube, angles)
    elif method == "pca":
        frame = pca_adi(cube, angles, ncomp=2)
    else:
        frame = pca_annular(cube, angles, 3.0, ncomp=2, r_in_px=6, delta_rot=0.5)
    x = 20 + sep * np.cos(np.deg2rad(theta))
    y = 20 + sep * np.sin(np.deg2rad(theta))
    py, px = np.unravel_index(np.argmax(frame * _fov(frame.shape, 18)), frame.shape)
    assert np.hypot(px - x, py - y) <= 1.5
    assert snr(frame, (round(x), round(y)), 3.0) > 5


def test_baseline_errors(small_cube):
    cube, angles = small_cube
    with pytest.raises(ValueError, match=r"ncomp=13 is at or above the rank of the data, 11 \(mean subtraction .* use at most ncomp=10"):
        pca_adi(cube, angles, ncomp=13)
    with pytest.raises(ValueError, match="collapse must be one of"):
        median_adi(cube, angles, collapse="sum")
    with pytest.raises(ValueError, match="scaling must be one of"):
        pca_adi(cube, angles, ncomp=2, scaling="spat-mean")
    with pytest.raises(ValueError, match=r"ncomp=10 is more than annular PCA can use here: .* only 0 frames rotate .*"
                       r"no number of components is usable: lower delta_rot \(the rotation threshold"):
        pca_annular(cube, angles, 3.0, ncomp=10, delta_rot=3)
    with pytest.raises(ValueError, match="cevr must be in"):
        pca_adi(cube, angles, cevr=1.5)
