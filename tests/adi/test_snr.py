import numpy as np
import pytest

from sodinn.adi.baselines import pca_annular
from sodinn.adi.snr import snr, snr_details, snr_map, snr_map_region


@pytest.fixture(scope="module")
def naco_annular(naco):
    return pca_annular(naco.cube, naco.angles_deg, naco.fwhm_px, ncomp=10)


@pytest.mark.parametrize("lobes", [False, True])
def test_snr_at_beta_pic_b_matches_vip(naco, naco_annular, vip, lobes):
    ours = snr(naco_annular, (62, 63), naco.fwhm_px, exclude_negative_lobes=lobes)
    ref = vip.metrics.snr(naco_annular, (62, 63), naco.fwhm_px, exclude_negative_lobes=lobes)
    assert ours == pytest.approx(ref, rel=0.01)  # the bound; in fact equal to ~1e-12
    assert ours == pytest.approx(ref, rel=1e-9)
    assert ours > 8


def test_snr_at_subpixel_positions_matches_vip(naco_annular, vip, rng):
    for x, y in rng.uniform(20, 80, size=(5, 2)):
        ours = snr(naco_annular, (x, y), 4.8)
        ref = vip.metrics.snr(naco_annular, (x, y), 4.8)
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_snr_map_matches_vip_and_peaks_on_beta_pic_b(naco, naco_annular, vip):
    ours = snr_map(naco_annular, naco.fwhm_px)
    ref = vip.metrics.snrmap(naco_annular, naco.fwhm_px, verbose=False, nproc=2)
    # VIP builds its region mask from the frame's values, so it skips pixels that are exactly 0
    # (here the rim beyond the last PCA annulus); sodinn uses the geometric region alone
    compared = naco_annular != 0
    np.testing.assert_allclose(ours[compared], ref[compared], rtol=0, atol=1e-9)
    assert np.count_nonzero(ours[compared]) > 6000
    py, px = np.unravel_index(np.argmax(ours), ours.shape)
    assert np.hypot(px - 62, py - 63) <= naco.fwhm_px / 2


@pytest.mark.parametrize("size", [40, 41])
def test_snr_map_equals_pointwise_snr(rng, size):
    frame = rng.normal(size=(size, size))
    fwhm = 3.3
    fast = snr_map(frame, fwhm, exclude_negative_lobes=True)
    region = snr_map_region(frame.shape, fwhm)
    ys, xs = np.nonzero(region)
    pick = rng.choice(ys.size, 60, replace=False)
    for y, x in zip(ys[pick], xs[pick]):
        assert fast[y, x] == pytest.approx(snr(frame, (x, y), fwhm, exclude_negative_lobes=True), rel=1e-10, abs=1e-12)
    assert np.all(fast[~region] == 0)
    assert np.count_nonzero(fast[region]) == region.sum()


def test_snr_analytic_case():
    # a frame that is 1 inside the test aperture and 0 elsewhere except a known pattern on the ring
    fwhm = 4.0
    details = snr_details(np.zeros((41, 41)) + 1.0, (30, 20), fwhm)
    # uniform frame: every aperture holds pi r^2, the noise std is 0 -> S/N undefined (nan)
    assert np.allclose(details.noise_fluxes, np.pi * 4.0)
    n_ap = int(np.floor(2 * np.pi / (2 * np.arcsin(fwhm / 2 / 10))))
    assert details.apertures_xy.shape == (n_ap, 2)
    frame = np.zeros((41, 41))
    frame[20, 30] = 10.0  # point source at the test aperture
    rng = np.random.default_rng(3)
    frame += rng.normal(scale=1e-3, size=frame.shape)
    d = snr_details(frame, (30, 20), fwhm)
    expected = (d.signal_flux - d.noise_fluxes.mean()) / (d.noise_fluxes.std(ddof=1) * np.sqrt(1 + 1 / d.noise_fluxes.size))
    assert d.snr == pytest.approx(expected)
    assert d.signal_flux == pytest.approx(10.0, abs=0.01)


def test_snr_errors(rng):
    frame = rng.normal(size=(31, 31))
    with pytest.raises(ValueError, match="separation > FWHM/2"):
        snr(frame, (16, 15), 4.0)
    with pytest.raises(ValueError, match="must be square"):
        snr_map(rng.normal(size=(31, 30)), 3.0)
    with pytest.raises(ValueError, match="fwhm_px must be > 0"):
        snr_map(frame, -1.0)
    with pytest.raises(ValueError, match="one \\(x, y\\) position"):
        snr(frame, [(20, 20), (10, 10)], 3.0)


# ------------------------------------------------------------------ known sources left out of the noise (issue 14)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _theta_range_deg(sep_px, source_xy, center_xy, radius_px):
    """The angles (deg from +x) of the circle of radius ``sep_px`` that lie within ``radius_px`` of ``source_xy``."""
    dx, dy = source_xy[0] - center_xy[0], source_xy[1] - center_xy[1]
    d = np.hypot(dx, dy)
    half = np.rad2deg(np.arccos((sep_px**2 + d**2 - radius_px**2) / (2 * sep_px * d)))
    theta = np.rad2deg(np.arctan2(dy, dx))
    return (theta - half, theta + half)


@pytest.mark.parametrize("lobes", [False, True])
def test_snr_without_the_apertures_on_beta_pic_b_matches_vip(naco, naco_annular, vip, lobes):
    """Noise apertures within 2 FWHM of beta Pic b dropped = vip-hci's ``exclude_theta_range`` over the same arc."""
    fwhm = naco.fwhm_px
    sep = np.hypot(62 - 50, 63 - 50)
    excluded = _theta_range_deg(sep, (62, 63), (50, 50), 2 * fwhm)
    for theta in (150.0, 230.0, 300.0):
        xy = (50 + sep * np.cos(np.deg2rad(theta)), 50 + sep * np.sin(np.deg2rad(theta)))
        plain = snr_details(naco_annular, xy, fwhm, exclude_negative_lobes=lobes)
        ours = snr_details(naco_annular, xy, fwhm, exclude_negative_lobes=lobes, exclude_xy=[(62, 63)], exclude_radius_px=2 * fwhm)
        ref = vip.metrics.snr(naco_annular, xy, fwhm, exclude_negative_lobes=lobes, exclude_theta_range=excluded, full_output=True)
        assert ours.noise_fluxes.size == ref[3].size < len(ours.apertures_xy) - 1 - 2 * lobes  # some were dropped
        assert ours.snr == pytest.approx(ref[-1], rel=1e-9)
        # beta Pic b inflates the plain noise
        assert ours.noise_fluxes.std(ddof=1) < 0.5 * plain.noise_fluxes.std(ddof=1)


@settings(max_examples=25, deadline=None)
@given(
    sep=st.floats(6.0, 16.0),
    theta=st.floats(-180.0, 180.0),
    source_sep=st.floats(4.0, 17.0),
    source_theta=st.floats(-180.0, 180.0),
    radius=st.floats(0.0, 9.0),
    lobes=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_snr_exclusion_is_mawet_over_the_remaining_apertures(sep, theta, source_sep, source_theta, radius, lobes, seed):
    frame = np.random.default_rng(seed).normal(size=(41, 41))
    fwhm = 3.0
    xy = (20 + sep * np.cos(np.deg2rad(theta)), 20 + sep * np.sin(np.deg2rad(theta)))
    source = (20 + source_sep * np.cos(np.deg2rad(source_theta)), 20 + source_sep * np.sin(np.deg2rad(source_theta)))
    full = snr_details(frame, xy, fwhm)  # every aperture: the test one first, then clockwise
    noise_idx = np.arange(2, len(full.apertures_xy) - 1) if lobes else np.arange(1, len(full.apertures_xy))
    fluxes = np.r_[full.signal_flux, full.noise_fluxes]
    keep = noise_idx[np.hypot(*(full.apertures_xy[noise_idx] - source).T) > radius]
    if keep.size < 2:
        with pytest.raises(ValueError, match="exclude_radius_px"):
            snr(frame, xy, fwhm, exclude_negative_lobes=lobes, exclude_xy=[source], exclude_radius_px=radius)
        return
    noise = fluxes[keep]
    expected = (fluxes[0] - noise.mean()) / (noise.std(ddof=1) * np.sqrt(1 + 1 / noise.size))
    got = snr_details(frame, xy, fwhm, exclude_negative_lobes=lobes, exclude_xy=[source], exclude_radius_px=radius)
    assert got.snr == pytest.approx(expected, rel=1e-10, abs=1e-12)
    np.testing.assert_array_equal(got.noise_fluxes, noise)
    np.testing.assert_array_equal(got.apertures_xy, full.apertures_xy)


@pytest.mark.parametrize("none", [(), [], np.zeros((0, 2))])
def test_snr_without_sources_or_radius_is_the_plain_formula(rng, none):
    frame = rng.normal(size=(41, 41))
    for lobes in (False, True):
        plain = snr(frame, (31.5, 24.2), 3.0, exclude_negative_lobes=lobes)
        assert snr(frame, (31.5, 24.2), 3.0, exclude_negative_lobes=lobes, exclude_xy=none, exclude_radius_px=5.0) == plain
        # a radius of 0 drops an aperture only if its centre is exactly on the source
        assert snr(frame, (31.5, 24.2), 3.0, exclude_negative_lobes=lobes, exclude_xy=[(5.0, 5.0)], exclude_radius_px=0.0) == plain


def test_snr_exclusion_errors(rng):
    frame = rng.normal(size=(41, 41))
    with pytest.raises(ValueError, match="exclude_radius_px must be >= 0"):
        snr(frame, (30, 20), 3.0, exclude_xy=[(10, 20)], exclude_radius_px=-1.0)
    with pytest.raises(ValueError, match=r"only 0 of the \d+ noise apertures .* Lower exclude_radius_px"):
        snr(frame, (30, 20), 3.0, exclude_xy=[(20, 20)], exclude_radius_px=15.0)
    with pytest.raises(TypeError, match="exclude_xy must be array-like of numbers"):
        snr(frame, (30, 20), 3.0, exclude_xy="62 63", exclude_radius_px=1.0)
    with pytest.raises(ValueError, match="exclude_xy must be"):
        snr(frame, (30, 20), 3.0, exclude_xy=[(1, 2, 3)], exclude_radius_px=1.0)
    with pytest.raises(TypeError, match="exclude_radius_px"):
        snr(frame, (30, 20), 3.0, exclude_xy=[(10, 20)], exclude_radius_px="2")
