"""The star's position: measured on the median frame, moved to the frame centre; beta Pic b's astrometry with it."""

from __future__ import annotations

import numpy as np
import pytest

from sodinn.adi.centering import estimate_star_center, recenter_cube
from sodinn.adi.sequence import ADISequence
from sodinn.exceptions import SettingError


def _halo_cube(x, y, *, n=6, size=41, seed=0, noise=0.5):
    """A star core (2-D Gaussian, sigma 2.5 px) at (x, y) on a halo floor, with white noise: the analytic case."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((size, size))
    core = 500.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.5**2)) + 10.0
    return core + rng.normal(scale=noise, size=(n, size, size))


@pytest.mark.parametrize(("x", "y"), [(20.0, 20.0), (21.23, 19.4), (18.7, 21.9)])
def test_the_star_centre_of_an_analytic_core_is_found(x, y):
    est = estimate_star_center(_halo_cube(x, y), 4.0)
    assert np.hypot(est[0] - x, est[1] - y) < 0.01


def test_recentring_moves_the_star_to_the_frame_centre_and_back_exactly():
    yy, xx = np.indices((40, 40))
    # smooth frames (band-limited to float precision), so the Fourier shift is exact: a centred star of three widths
    centred = np.stack([np.exp(-((xx - 20) ** 2 + (yy - 20) ** 2) / w) * 100 for w in (14.0, 18.0, 22.0)])
    moved = recenter_cube(centred, (20.0 - 1.3, 20.0 + 0.6))  # the star put at (21.3, 19.4)
    assert estimate_star_center(moved, 4.0) == pytest.approx((21.3, 19.4), abs=1e-3)
    back = recenter_cube(moved, (21.3, 19.4))
    np.testing.assert_allclose(back, centred, atol=1e-9 * centred.max())
    assert back.sum() == pytest.approx(centred.sum(), rel=1e-12)  # flux kept
    # one position per frame
    per_frame = recenter_cube(moved, [(21.3, 19.4)] * 3)
    np.testing.assert_allclose(per_frame, back, atol=1e-12)


def test_bad_star_positions_are_refused_naming_the_setting():
    cube = _halo_cube(20.0, 20.0, n=2)
    with pytest.raises(SettingError, match="star_center_xy.*quarter"):
        recenter_cube(cube, (35.0, 20.0))
    with pytest.raises(SettingError, match="star_center_xy"):
        recenter_cube(cube, (20.0, 20.0, 1.0))
    flat = np.random.default_rng(0).normal(size=(3, 41, 41))  # no core anywhere
    with pytest.raises(SettingError, match="star_center_xy"):
        estimate_star_center(flat - 50.0 * (np.hypot(*np.indices((41, 41)) - 20) < 4), 4.0)
    with pytest.raises(ValueError, match="box"):
        estimate_star_center(_halo_cube(20.0, 20.0, size=15), 4.0, box_fwhm=3.0)


def test_a_recentred_sequence_records_where_the_star_was():
    psf = np.exp(-np.hypot(*np.indices((9, 9)) - 4) ** 2 / 2)
    seq = ADISequence(_halo_cube(21.3, 19.4), np.linspace(0, 50, 6), psf, fwhm_px=2.4)
    assert seq.star_xy_px is None
    moved = seq.recentered(estimate_star_center(seq.cube, 4.0))
    assert moved.star_xy_px == pytest.approx((21.3, 19.4), abs=0.01)
    assert estimate_star_center(moved.cube, 4.0) == pytest.approx((20.0, 20.0), abs=0.01)
    np.testing.assert_array_equal(moved.angles_deg, seq.angles_deg)
    with pytest.raises(SettingError, match="recentred already"):
        moved.recentered((20.0, 20.0))


def test_the_cli_flag_and_the_config_key_recentre_the_sequence(naco_paths, tmp_path):
    from sodinn.config import DataConfig

    assert DataConfig(star_center_xy=[51.2, 51.0]).star_center_xy == (51.2, 51.0)
    with pytest.raises(SettingError, match="star_center_xy"):
        DataConfig(star_center_xy=[51.2])
    from sodinn.cli import main

    paths = [f"--{k} {naco_paths[k]}" for k in ("cube", "angles", "psf")]
    code = main(f"reduce {' '.join(paths)} --star-center 51.23 51.02 --ncomp 5 -o {tmp_path / 'out'} --quiet".split())
    assert code == 0
    import tomllib

    saved = tomllib.loads((tmp_path / "out" / "config.toml").read_text())
    assert saved["data"]["star_center_xy"] == [51.23, 51.02]
    code = main(f"reduce {' '.join(paths)} --star-center 90 51 --ncomp 5 -o {tmp_path / 'bad'} --quiet".split())
    assert code == 2 and not (tmp_path / "bad").exists()


def test_naco_star_centre_matches_vip(naco, vip):
    """The same fit as vip-hci's fit_2dgaussian on the median frame (15-px box around the centre)."""
    ref = vip.var.fit_2dgaussian(np.median(naco.cube, axis=0), crop=True, cropsize=15, cent=(50, 50), full_output=True,
                                 debug=False)
    x, y = estimate_star_center(naco.cube, naco.fwhm_px)
    assert x == pytest.approx(float(ref["centroid_x"][0]), abs=0.02)
    assert y == pytest.approx(float(ref["centroid_y"][0]), abs=0.02)
    assert np.hypot(x - 50, y - 50) > 1.0  # the shared cube's star is not on (50, 50)


@pytest.mark.slow
def test_naco_beta_pic_b_astrometry_with_the_measured_star_centre_is_the_published_one(naco):
    """Recentred on its measured star, beta Pic b lands within Absil et al. 2013's error bars (0.452 +- 0.010", 211.2 +- 1.3 deg)."""
    from sodinn.adi.baselines import pca_annular
    from sodinn.adi.sky import NACO_BETAPIC_NORTH_OFFSET_DEG
    from sodinn.detect.candidates import find_candidates, measure_candidates

    star = estimate_star_center(naco.cube, naco.fwhm_px)
    seq = naco.recentered(star).with_north_offset(NACO_BETAPIC_NORTH_OFFSET_DEG)
    frame = pca_annular(seq.cube, seq.angles_deg, seq.fwhm_px, ncomp=10)
    prob = np.zeros(frame.shape)
    y0, x0 = np.unravel_index(np.argmax(np.where(np.hypot(*np.indices(frame.shape) - 50) > 10, frame, -np.inf)), frame.shape)
    prob[y0, x0] = 0.99  # the brightest pixel beyond 10 px: beta Pic b
    found = find_candidates(prob, 0.9, pixel_scale_arcsec=0.0272, north_offset_deg=seq.north_offset_deg)
    table = measure_candidates(found, seq, frame, ncomp=10)
    assert table["astrometry"][0] == "negfc"
    assert abs(table["sep_arcsec"][0] - 0.452) < 0.010
    assert abs(table["pa_deg"][0] - 211.2) < 1.3
    # the same fit without the recentring: 3 sigma off in separation (README, "Sky conventions")
    plain = naco.with_north_offset(NACO_BETAPIC_NORTH_OFFSET_DEG)
    frame = pca_annular(plain.cube, plain.angles_deg, plain.fwhm_px, ncomp=10)
    prob = np.zeros(frame.shape)
    prob[y0 + 1, x0 + 1] = 0.99
    found = find_candidates(prob, 0.9, pixel_scale_arcsec=0.0272, north_offset_deg=plain.north_offset_deg)
    table_plain = measure_candidates(found, plain, frame, ncomp=10)
    assert table_plain["sep_arcsec"][0] - 0.452 > 2.5 * 0.010
    print(f"beta Pic b: {table['sep_arcsec'][0]:.4f} arcsec, PA {table['pa_deg'][0]:.2f} deg recentred on "
          f"({star[0]:.2f}, {star[1]:.2f}); {table_plain['sep_arcsec'][0]:.4f}, {table_plain['pa_deg'][0]:.2f} as given")
