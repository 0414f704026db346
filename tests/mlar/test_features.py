"""Tests of sodinn.mlar.features: S/N curves of MLAR samples across their K ranks (NA-SODINN)."""

from __future__ import annotations

import numpy as np
import pytest

from sodinn.adi.geometry import frame_center
from sodinn.adi.injection import cube_inject_companions
from sodinn.adi.rotation import cube_derotate
from sodinn.adi.snr import snr
from sodinn.config import SampleConfig
from sodinn.datasets import make_adi_sequence
from sodinn.mlar.features import annulus_snr_curves, ring_apertures, snr_curves
from sodinn.mlar.operator import AnnulusOperator

FWHM = 4.0


@pytest.fixture(scope="module")
def synthetic():
    return make_adi_sequence(n_frames=24, size_px=49, fwhm_px=FWHM, seed=3)


def _operator(cube, angles, r_in=10.0):
    config = SampleConfig(patch_px=9, n_ranks=3, k_policy="fixed", k_list=(1, 4, 10))
    return AnnulusOperator(np.asarray(cube), angles, r_in, r_in + FWHM, config, np.ones(cube.shape[1:], dtype=bool))


def _slow_frames(op, cube, angles):
    """Residual frames by the slow path: region SVD, residual per rank in full frames, derotation, mean."""
    n, size, _ = cube.shape
    yy, xx = op.region
    m = cube[:, yy, xx]
    lam, u = np.linalg.eigh(m @ m.T)
    u = u[:, ::-1]
    out = []
    for k in op.ks:
        uk = u[:, :k]
        resid = np.zeros((n, size, size))
        resid[:, yy, xx] = m - uk @ (uk.T @ m)
        out.append(cube_derotate(resid, angles).mean(axis=0))
    return np.stack(out)


def test_snr_curves_equal_snr_at_every_position_and_frame():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(3, 41, 41))
    frames[:, 20, 32] += [5.0, 10.0, 20.0]
    xy = np.array([[32.0, 20.0], [14.3, 27.8], [20.0, 6.0], [35.0, 31.0]])
    for lobes in (False, True):
        curves = snr_curves(frames, xy, 3.0, exclude_negative_lobes=lobes)
        assert curves.shape == (4, 3)
        expected = [[snr(f, tuple(p), 3.0, exclude_negative_lobes=lobes) for f in frames] for p in xy]
        np.testing.assert_allclose(curves, expected, rtol=1e-13, atol=0)


def test_annulus_snr_curves_equal_snr_on_the_slow_residual_frames(synthetic):
    cube, angles = np.asarray(synthetic.cube), synthetic.angles_deg
    op = _operator(cube, angles)
    idx = np.arange(0, len(op.centers), 9)
    curves = annulus_snr_curves(op, idx, FWHM)
    frames = _slow_frames(op, cube, angles)
    expected = [[snr(f, (float(x), float(y)), FWHM) for f in frames] for y, x in op.centers[idx]]
    assert curves.shape == (idx.size, 3)
    np.testing.assert_allclose(curves, expected, rtol=1e-6, atol=1e-9)


def test_annulus_snr_curves_with_minus_angles_match_the_flipped_frames(synthetic):
    cube, angles = np.asarray(synthetic.cube), synthetic.angles_deg
    op = _operator(cube, angles)
    idx = np.arange(3, len(op.centers), 17)
    curves = annulus_snr_curves(op, idx, FWHM, angles_deg=op.minus, exclude_negative_lobes=True)
    frames = _slow_frames(op, cube, -angles)
    expected = [[snr(f, (float(x), float(y)), FWHM, exclude_negative_lobes=True) for f in frames]
                for y, x in op.centers[idx]]
    np.testing.assert_allclose(curves, expected, rtol=1e-6, atol=1e-9)


def test_snr_curve_of_an_injected_companion_rises_with_flux(synthetic):
    cube, angles = np.asarray(synthetic.cube), synthetic.angles_deg
    cy, cx = frame_center(cube.shape)
    sep, theta = 12.0, 30.0
    x = cx + sep * np.cos(np.deg2rad(theta))
    y = cy + sep * np.sin(np.deg2rad(theta))
    previous = None
    for flux in (0.0, 300.0, 1000.0, 3000.0):
        injected = cube_inject_companions(cube, synthetic.psf, angles, sep_px=sep, theta_deg=theta, flux=flux)
        op = _operator(injected, angles)
        row = int(np.flatnonzero((op.centers[:, 0] == round(y)) & (op.centers[:, 1] == round(x)))[0])
        curve = annulus_snr_curves(op, [row], FWHM)[0]
        if previous is not None:
            assert np.all(curve > previous)
        previous = curve
    assert previous.min() > 5  # the brightest companion is detected at every rank


def test_errors_name_the_problem(synthetic):
    cube, angles = np.asarray(synthetic.cube), synthetic.angles_deg
    op = _operator(cube, angles)
    with pytest.raises(ValueError, match="centre_idx"):
        annulus_snr_curves(op, [len(op.centers)], FWHM)
    with pytest.raises(TypeError, match="AnnulusOperator"):
        annulus_snr_curves(cube, [0], FWHM)
    with pytest.raises(ValueError, match="patch"):
        annulus_snr_curves(op, [0], 9.0)  # apertures wider than the patches
    with pytest.raises(ValueError, match="from the star"):
        snr_curves(np.zeros((1, 41, 41)), [(21.0, 20.0)], 3.0)


@pytest.mark.parametrize("lobes", [False, True])
def test_ring_apertures_give_snr_curves_of_the_frames_holding_the_values(synthetic, lobes):
    """curves_from_union / curves_from_rows equal snr_curves on frames that hold the values on the union pixels."""
    cube, angles = np.asarray(synthetic.cube), synthetic.angles_deg
    op = _operator(cube, angles)
    values = np.random.default_rng(4).normal(size=(len(op.ks), op.union.size))
    frames = np.zeros((len(op.ks), op.size * op.size))
    frames[:, op.union] = values
    frames = frames.reshape(-1, op.size, op.size)
    idx = np.arange(1, len(op.centers), 7)
    rings = ring_apertures(op, idx, FWHM, exclude_negative_lobes=lobes)
    expected = snr_curves(frames, op.centers[idx][:, ::-1].astype(float), FWHM, exclude_negative_lobes=lobes)
    np.testing.assert_allclose(rings.curves_from_union(values), expected, rtol=1e-12, atol=1e-12)
    own = rings.curves_from_rows([values[:, r] for r in rings.rows])
    np.testing.assert_allclose(own, expected, rtol=1e-12, atol=1e-12)
    assert len(rings) == idx.size and rings.max_rows == max(r.size for r in rings.rows) > op.patch_px**2
    # the rows hold every pixel the apertures weigh: values elsewhere change nothing
    outside = np.setdiff1d(np.arange(op.union.size), np.concatenate(rings.rows))
    changed = values.copy()
    changed[:, outside] = 1e6
    np.testing.assert_allclose(rings.curves_from_union(changed), expected, rtol=1e-12, atol=1e-12)


def test_ring_apertures_errors(synthetic):
    cube, angles = np.asarray(synthetic.cube), synthetic.angles_deg
    op = _operator(cube, angles)
    with pytest.raises(ValueError, match="centre_idx"):
        ring_apertures(op, [-1], FWHM)
    with pytest.raises(TypeError, match="AnnulusOperator"):
        ring_apertures(cube, [0], FWHM)
    with pytest.raises(ValueError, match="FWHM \\+ 2 px"):
        ring_apertures(op, [0], 9.0)
    rings = ring_apertures(op, [0, 1], FWHM)
    with pytest.raises(ValueError, match="one array per centre"):
        rings.curves_from_rows([np.zeros((3, rings.rows[0].size))])
    with pytest.raises(ValueError, match="must be \\(K, "):
        rings.curves_from_rows([np.zeros((3, 2)), np.zeros((3, 2))])


def test_known_sources_leave_the_noise_apertures_as_in_snr_details():
    """The exclusion drops the same noise apertures as snr_details(exclude_xy=...): equal S/N, bright source or not."""
    from sodinn.adi.snr import snr_details

    rng = np.random.default_rng(1)
    frames = rng.normal(size=(3, 41, 41))
    frames[:, 8, 20] += [50.0, 200.0, 800.0]  # a bright known source 12 px below the star, in the ring of the tests
    source, radius = [(20.0, 8.0)], 2 * 3.0
    xy = np.array([[32.0, 20.0], [8.0, 20.0], [20.0, 32.0], [26.0, 9.6]])
    for lobes in (False, True):
        curves = snr_curves(frames, xy, 3.0, exclude_negative_lobes=lobes, exclude_xy=source, exclude_radius_px=radius)
        details = [[snr_details(f, tuple(p), 3.0, exclude_negative_lobes=lobes, exclude_xy=source,
                                exclude_radius_px=radius) for f in frames] for p in xy]
        np.testing.assert_allclose(curves, [[d.snr for d in row] for row in details], rtol=1e-12, atol=0)
        kept = details[0][0].noise_fluxes.size
        every = snr_details(frames[0], tuple(xy[0]), 3.0, exclude_negative_lobes=lobes).noise_fluxes.size
        assert 2 <= kept < every  # some apertures were on the source
    # the bright source in the noise apertures drags the unmasked S/N down: the fix is what moves it
    plain = snr_curves(frames, xy[:1], 3.0)[0]
    masked = snr_curves(frames, xy[:1], 3.0, exclude_xy=source, exclude_radius_px=radius)[0]
    assert np.all(np.abs(masked) > np.abs(plain))


def test_ring_apertures_with_known_sources_match_snr_curves(synthetic):
    cube, angles = np.asarray(synthetic.cube), synthetic.angles_deg
    op = _operator(cube, angles)
    values = np.random.default_rng(5).normal(size=(len(op.ks), op.union.size))
    frames = np.zeros((len(op.ks), op.size * op.size))
    frames[:, op.union] = values
    frames = frames.reshape(-1, op.size, op.size)
    idx = np.arange(2, len(op.centers), 5)
    y, x = op.centers[idx[3]]
    source = [(float(x) + 0.4, float(y) - 0.3)]
    rings = ring_apertures(op, idx, FWHM, exclude_xy=source, exclude_radius_px=2 * FWHM)
    plain = ring_apertures(op, idx, FWHM)
    assert any(a.size < b.size for a, b in zip(rings.noise, plain.noise))
    expected = snr_curves(frames, op.centers[idx][:, ::-1].astype(float), FWHM, exclude_xy=source,
                          exclude_radius_px=2 * FWHM)
    np.testing.assert_allclose(rings.curves_from_union(values), expected, rtol=1e-12, atol=1e-12)
    curves = annulus_snr_curves(op, idx[:4], FWHM, exclude_xy=source, exclude_radius_px=2 * FWHM)
    expected = [[snr(f, (float(x), float(y)), FWHM, exclude_xy=source, exclude_radius_px=2 * FWHM)
                 for f in _slow_frames(op, cube, angles)] for y, x in op.centers[idx[:4]]]
    np.testing.assert_allclose(curves, expected, rtol=1e-6, atol=1e-9)


def test_too_few_noise_apertures_outside_the_known_sources_are_refused(synthetic):
    from sodinn.exceptions import SettingError

    op = _operator(np.asarray(synthetic.cube), synthetic.angles_deg)
    y, x = op.centers[0]
    with pytest.raises(SettingError, match="noise apertures .* lie farther than 40 px.*exclude_radius_px"):
        ring_apertures(op, [0], FWHM, exclude_xy=[(float(x), float(y))], exclude_radius_px=40.0)
    with pytest.raises(ValueError, match="exclude_radius_px must be >= 0"):
        snr_curves(np.zeros((1, 41, 41)), [(32.0, 20.0)], 3.0, exclude_xy=[(20.0, 8.0)], exclude_radius_px=-1.0)
    with pytest.raises(ValueError, match="exclude_xy"):
        snr_curves(np.zeros((1, 41, 41)), [(32.0, 20.0)], 3.0, exclude_xy=[(20.0, 8.0, 1.0)], exclude_radius_px=6.0)
