import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sodinn.adi.baselines import (
    annular_ncomp_limit,
    check_not_roundoff,
    get_baseline,
    median_adi,
    pca_adi,
    pca_annular,
    pca_ncomp_limit,
)
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.snr import snr
from sodinn.exceptions import RotationWarning

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


# ---------------------------------------------------------------- issue 13: wrapped angles, ranks, round-off frames


@pytest.fixture(scope="module")
def wrapped_case():
    """The issue's case: 30 frames of 51 px, FWHM 4, a companion at 10 px, angles 160 -> 200 deg, and the same wrapped."""
    from sodinn.datasets import make_adi_sequence

    data = make_adi_sequence(n_frames=30, size_px=51, fwhm_px=4.0, field_rotation_deg=40.0, angles_start_deg=160.0,
                             companions=[(10.0, 0.0, 3000.0)], seed=0)
    wrapped = (data.angles_deg + 180.0) % 360.0 - 180.0
    assert np.ptp(wrapped) > 350  # really wrapped: a jump of ~360 deg mid-sequence
    return data, wrapped


def test_wrapped_angles_give_the_same_annular_frame_and_snr(wrapped_case, vip):
    # before: the two frames differed by 36.6 (frame max 169) and the S/N was 7.56 vs 6.55
    data, wrapped = wrapped_case
    c = data.companions[0]
    given = pca_annular(data.cube, data.angles_deg, 4.0, ncomp=10)
    wrap = pca_annular(data.cube, wrapped, 4.0, ncomp=10)
    np.testing.assert_allclose(wrap, given, rtol=0, atol=1e-9 * np.abs(given).max())
    assert snr(wrap, (c.x_px, c.y_px), 4.0) == pytest.approx(snr(given, (c.x_px, c.y_px), 4.0), abs=1e-9)
    assert snr(given, (c.x_px, c.y_px), 4.0) > 5
    # vip-hci gives one frame for both too
    kw = {"fwhm": 4.0, "asize": 4.0, "ncomp": 10, "imlib": "skimage", "interpolation": "bilinear", "verbose": False}
    vip_given = vip.psfsub.pca_annular(data.cube, data.angles_deg, **kw)
    vip_wrap = vip.psfsub.pca_annular(data.cube, wrapped, **kw)
    np.testing.assert_allclose(vip_wrap, vip_given, rtol=0, atol=1e-9 * np.abs(vip_given).max())


def test_full_frame_reductions_do_not_depend_on_the_wrap(wrapped_case):
    data, wrapped = wrapped_case
    for reduce in (median_adi, lambda cube, angles: pca_adi(cube, angles, ncomp=5)):
        a, b = reduce(data.cube, data.angles_deg), reduce(data.cube, wrapped)
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-9 * np.abs(a).max())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=st.lists(st.integers(-3, 3), min_size=12, max_size=12), start=st.floats(-720, 720))
def test_any_turns_per_frame_give_the_same_frame(small_cube, turns, start):
    cube, angles = small_cube
    angles = angles + start
    shifted = angles + 360.0 * np.asarray(turns)
    ref = pca_annular(cube, angles, 3.0, ncomp=2, r_in_px=6.0, delta_rot=0.5)
    out = pca_annular(cube, shifted, 3.0, ncomp=2, r_in_px=6.0, delta_rot=0.5)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-8 * np.abs(ref).max())
    # a whole-sequence offset too (rotation by cos/sin: equal to rounding)
    np.testing.assert_allclose(median_adi(cube, shifted), median_adi(cube, angles), rtol=0, atol=1e-8 * np.abs(cube).max())


def test_ncomp_at_or_above_the_rank_is_refused_with_the_largest_usable_value(rng):
    cube = rng.normal(size=(20, 21, 21))
    angles = np.linspace(0, 60, 20)
    assert pca_ncomp_limit(cube) == (18, "mean subtraction leaves rank 19 in 20 frames")
    for ncomp in (19, 20):
        with pytest.raises(ValueError, match=rf"ncomp={ncomp} is at or above the rank of the data, 19 .*use at most ncomp=18"):
            pca_adi(cube, angles, ncomp=ncomp)
    assert np.abs(pca_adi(cube, angles, ncomp=18)).max() > 1e-3
    with pytest.raises(ValueError, match="ncomp=1 cannot be used: the data hold rank 1"):
        pca_adi(cube[:2], angles[:2], ncomp=1)
    with pytest.raises(ValueError, match="rank 1"):
        pca_adi(cube[:2], angles[:2])  # components by CEVR: none usable either
    # annular PCA without a rotation threshold: all frames, rank n_frames
    assert annular_ncomp_limit(angles, 3.0, 21, delta_rot=None)[0] == 19
    with pytest.raises(ValueError, match="use at most ncomp=19"):
        pca_annular(cube, angles, 3.0, ncomp=20, delta_rot=None)
    # a tiny annulus holds few pixels: its rank is bounded by them
    limit, why = annular_ncomp_limit(angles, 3.0, 21, delta_rot=None, r_in_px=0.0, width_px=1.0)
    assert limit == 0 and "holds only 1 pixels" in why


def test_registry_limits_and_round_off_frames(rng):
    cube = rng.normal(size=(6, 21, 21))
    angles = np.linspace(0, 90, 6)
    assert get_baseline("pca").ncomp_limit(cube, angles, 3.0) == (4, "mean subtraction leaves rank 5 in 6 frames")
    assert get_baseline("median").ncomp_limit(cube, angles, 3.0) is None
    assert get_baseline("annular").ncomp_limit(cube, angles, 3.0, delta_rot=0)[0] == 5
    with pytest.raises(ValueError, match="takes no option"):
        get_baseline("pca").reduce(cube, angles, 3.0, ncomp=2, delta_rot=1.0)
    with pytest.raises(ValueError, match="round-off"):
        check_not_roundoff(np.full((21, 21), 1e-14), cube)
    check_not_roundoff(np.zeros((21, 21)), np.zeros((6, 21, 21)))  # an empty cube is not judged
    static = np.repeat(rng.normal(size=(1, 21, 21)), 6, axis=0)  # no change from frame to frame: median-ADI gives 0
    with pytest.raises(ValueError, match="the median-ADI frame is round-off"):
        get_baseline("median").reduce(static, angles, 3.0)


def test_small_rotation_warns_in_annular_pca(rng):
    cube = rng.normal(size=(10, 31, 31))
    radians = np.deg2rad(np.linspace(160, 200, 10))
    with pytest.warns(RotationWarning, match="radians"):
        pca_annular(cube, radians, 3.0, ncomp=2, delta_rot=0)
