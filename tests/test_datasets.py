"""Tests of the synthetic ADI generator :mod:`sodinn.datasets`.

The physics checks reduce the sequences with vip-hci's full-frame PCA-ADI (mean-centred,
``scaling='temp-mean'``) as an independent oracle, and measure S/N with :mod:`sodinn.adi.snr`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from sodinn.adi.geometry import frame_center, polar_coordinates
from sodinn.adi.injection import companion_positions, cube_inject_companions
from sodinn.adi.psf import aperture_flux, fit_fwhm
from sodinn.adi.rotation import cube_derotate
from sodinn.adi.snr import snr, snr_details, snr_map
from sodinn.datasets import Companion, SyntheticADI, airy_psf, make_adi_sequence

FWHM = 4.0


# --- helpers -----------------------------------------------------------------------------------


def _pca_adi(cube: np.ndarray, angles_deg: np.ndarray, ncomp: int = 5) -> np.ndarray:
    """Classic full-frame PCA-ADI (vip-hci), bilinear derotation, mean collapse."""
    with warnings.catch_warnings():  # vip-hci's import warns (e.g. no numba); not ours to fix
        warnings.simplefilter("ignore")
        psfsub = pytest.importorskip("vip_hci.psfsub")
    limits = pytest.importorskip("threadpoolctl").threadpool_limits
    # vip prints even with verbose=False; one BLAS thread: a 40 x N^2 SVD is ~5 ms, and
    # multi-threaded OpenBLAS can take 100x longer on a busy 2-core machine
    with contextlib.redirect_stdout(io.StringIO()), limits(limits=1, user_api="blas"):
        return psfsub.pca(
            np.array(cube),
            np.array(angles_deg),
            ncomp=ncomp,
            scaling="temp-mean",
            imlib="skimage",
            interpolation="bilinear",
            verbose=False,
        )


def _sky_xy(size: int, sep_px: float, theta_deg: float) -> tuple[float, float]:
    cy, cx = frame_center((size, size))
    return cx + sep_px * math.cos(math.radians(theta_deg)), cy + sep_px * math.sin(math.radians(theta_deg))


def _linear_pca(data: SyntheticADI, sep_px: float, theta_deg: float, ncomp: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """PCA-ADI of ``data`` and its response to a unit-flux companion at ``(sep_px, theta_deg)``.

    PCA-ADI of a faint companion is linear in its flux: ``final(f) = base + f * response``, the
    response measured by one faint probe injection.
    """
    base = _pca_adi(data.cube, data.angles_deg, ncomp)
    probe = 50.0
    injected = cube_inject_companions(
        data.cube, data.psf, data.angles_deg, sep_px=sep_px, theta_deg=theta_deg, flux=probe
    )
    return base, (_pca_adi(injected, data.angles_deg, ncomp) - base) / probe


def _flux_for_snr(data: SyntheticADI, sep_px: float, theta_deg: float, target: float) -> float | None:
    """Flux that gives a measured S/N of ``target`` at ``(sep_px, theta_deg)`` in PCA-ADI (5 components).

    Returns None if the position already holds a noise peak at S/N >= target without a companion,
    or if the companion's own self-subtraction lobes (in the noise apertures) cap its S/N below it.
    """
    base, response = _linear_pca(data, sep_px, theta_deg)
    xy = _sky_xy(data.cube.shape[-1], sep_px, theta_deg)

    def excess(flux: float) -> float:
        return snr(base + flux * response, xy, data.fwhm_px) - target

    if excess(0.0) >= 0:
        return None
    high = 100.0
    while excess(high) < 0:
        high *= 2
        if high > 1e7:
            return None
    return brentq(excess, 0.0, high, xtol=1e-3)


def _flux_for_expected_snr(data: SyntheticADI, sep_px: float, theta_deg: float, target: float) -> float:
    """Flux whose PCA-ADI signal is ``target`` times the noise at that separation (S/N in expectation)."""
    base, response = _linear_pca(data, sep_px, theta_deg)
    xy = _sky_xy(data.cube.shape[-1], sep_px, theta_deg)
    noise = snr_details(base, xy, data.fwhm_px).noise_fluxes
    unit = snr_details(response, xy, data.fwhm_px)
    signal = unit.signal_flux - unit.noise_fluxes.mean()
    return target * noise.std(ddof=1) * math.sqrt(1 + 1 / noise.size) / signal


def _flattened(cube: np.ndarray, r_in: float, r_out: float) -> np.ndarray:
    """Pixels of ``r_in <= r < r_out`` with each 1-px ring's median removed: the non-axisymmetric part."""
    r, _ = polar_coordinates(cube.shape)
    ring = np.floor(r).astype(int)
    out = cube.copy()
    for k in range(int(r_in), int(r_out)):
        sel = ring == k
        out[:, sel] -= np.median(cube[:, sel], axis=1, keepdims=True)
    return out[:, (r >= r_in) & (r < r_out)]


# --- structure, determinism, provenance --------------------------------------------------------


def test_default_sequence_has_the_documented_structure():
    data = make_adi_sequence(seed=0)
    assert isinstance(data, SyntheticADI)
    assert data.cube.shape == (40, 63, 63)
    assert data.cube.dtype == np.float64
    assert np.isfinite(data.cube).all()
    assert data.angles_deg.shape == (40,)
    assert data.psf.shape == (17, 17)
    assert np.unravel_index(np.argmax(data.psf), data.psf.shape) == (8, 8)
    assert data.fwhm_px == 4.0
    assert data.pixel_scale_arcsec == pytest.approx(0.0272)
    assert data.companions == ()
    assert data.companion_positions_xy.shape == (0, 2)
    for arr in (data.cube, data.angles_deg, data.psf):
        assert not arr.flags.writeable
    json.dumps(data.config)  # provenance is plain data


def test_same_seed_gives_identical_cubes_and_different_seeds_differ():
    a = make_adi_sequence(n_frames=8, size_px=41, seed=7)
    b = make_adi_sequence(n_frames=8, size_px=41, seed=7)
    c = make_adi_sequence(n_frames=8, size_px=41, seed=8)
    assert np.array_equal(a.cube, b.cube)
    assert not np.array_equal(a.cube, c.cube)
    from_generator = make_adi_sequence(n_frames=8, size_px=41, seed=np.random.default_rng(7))
    assert np.array_equal(a.cube, from_generator.cube)
    assert from_generator.config["seed"] is None  # a Generator's state cannot be recorded


def test_config_reproduces_the_sequence_even_without_a_seed():
    data = make_adi_sequence(n_frames=6, size_px=33, companions=[(8.0, 30.0, 400.0)], seed=None)
    assert isinstance(data.config["seed"], int)
    again = make_adi_sequence(**data.config)
    assert np.array_equal(data.cube, again.cube)
    assert np.array_equal(data.angles_deg, again.angles_deg)


def test_companions_change_only_their_own_pixels():
    # the star, sky and read noise are drawn before the companions' photons: same seed, same sky
    plain = make_adi_sequence(n_frames=10, size_px=41, seed=3)
    with_planet = make_adi_sequence(n_frames=10, size_px=41, companions=[(12.0, 100.0, 2000.0)], seed=3)
    diff = with_planet.cube - plain.cube
    x, y = companion_positions(diff.shape, plain.angles_deg, 12.0, 100.0)
    yy, xx = np.indices(diff.shape[1:])
    for t in range(len(diff)):
        stamp = np.maximum(abs(xx - x[t]), abs(yy - y[t])) <= plain.psf.shape[0] // 2 + 1
        assert np.all(diff[t][~stamp] == 0)
        assert diff[t][stamp].sum() > 0
    sky = cube_derotate(diff, plain.angles_deg).mean(axis=0)
    py, px = np.unravel_index(np.argmax(sky), sky.shape)
    cx, cy = with_planet.companion_positions_xy[0]
    assert math.hypot(px - cx, py - cy) <= 1.0


def test_companion_description_is_in_the_sky_frame():
    data = make_adi_sequence(n_frames=4, size_px=41, companions=[(10.0, 90.0, 100.0), (15.0, 180.0, 0.0)], seed=0)
    first, second = data.companions
    assert first == Companion(sep_px=10.0, theta_deg=90.0, flux=100.0, x_px=20.0, y_px=30.0)
    assert (second.x_px, second.y_px) == pytest.approx((5.0, 20.0))
    assert data.config["companions"] == [[10.0, 90.0, 100.0], [15.0, 180.0, 0.0]]


# --- optics ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fwhm_px", "obstruction"), [(2.5, 0.14), (4.0, 0.14), (4.0, 0.0), (6.0, 0.3)])
def test_psf_fwhm_and_normalisation(fwhm_px, obstruction):
    psf = airy_psf(fwhm_px, central_obstruction=obstruction)
    assert psf.shape[0] % 2 == 1
    assert fit_fwhm(psf) == pytest.approx(fwhm_px, rel=0.02)  # required: 5 %
    assert aperture_flux(psf, fwhm_px) == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(psf, psf.T) and np.allclose(psf, psf[::-1])  # circular pupil


def test_sequence_psf_matches_fwhm():
    data = make_adi_sequence(n_frames=2, size_px=41, fwhm_px=5.0, seed=0)
    assert fit_fwhm(data.psf) == pytest.approx(5.0, rel=0.05)


def test_star_light_peaks_near_one_fwhm_not_at_the_star():
    data = make_adi_sequence(n_frames=10, read_noise=0.0, seed=1)
    mean = data.cube.mean(axis=0)
    r, _ = polar_coordinates(mean.shape)
    profile = np.array([mean[(r >= k) & (r < k + 1)].mean() for k in range(28)])
    assert 0.5 * FWHM <= np.argmax(profile) <= 1.5 * FWHM  # the coronagraph hides the star
    assert profile[0] < 0.1 * profile.max()
    assert profile[4] > profile[12] > profile[24]  # the halo and speckles fade outwards


def test_angles_are_monotonic_and_span_the_field_rotation():
    data = make_adi_sequence(n_frames=30, field_rotation_deg=75.0, seed=0)
    angles = data.angles_deg
    assert np.all(np.diff(angles) > 0)
    assert angles[-1] - angles[0] == pytest.approx(75.0, abs=1e-12)
    assert angles[0] == pytest.approx(-37.5)
    steps = np.diff(angles)
    assert steps[len(steps) // 2] > 3 * steps[0]  # a transit: fastest mid-sequence
    linear = make_adi_sequence(n_frames=5, field_rotation_deg=40.0, angles_start_deg=10.0, rotation_profile="linear")
    assert linear.angles_deg == pytest.approx([10.0, 20.0, 30.0, 40.0, 50.0])


def test_detector_noise_is_poisson_plus_read_noise():
    data = make_adi_sequence(
        n_frames=20, size_px=41, halo_contrast=0.0, speckle_static_rad=0.0, speckle_drift_rad=0.0,
        sky_flux=100.0, read_noise=3.0, seed=2,
    )  # fmt: skip
    assert data.cube.mean() == pytest.approx(0.0, abs=0.1)  # sky subtracted
    assert data.cube.var() == pytest.approx(100.0 + 9.0, rel=0.03)


# --- speckles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_speckles_are_fixed_in_the_pupil_frame(seed):
    # frames half a sequence apart share their speckles; once derotated (sky-aligned) they do not
    data = make_adi_sequence(seed=seed)
    raw = _flattened(data.cube, 2 * FWHM, 5 * FWHM)
    sky = _flattened(cube_derotate(data.cube, data.angles_deg), 2 * FWHM, 5 * FWHM)
    half = len(raw) // 2
    corr_raw = np.median([np.corrcoef(raw[i], raw[i + half])[0, 1] for i in range(half)])
    corr_sky = np.median([np.corrcoef(sky[i], sky[i + half])[0, 1] for i in range(half)])
    assert corr_raw > 0.25
    assert corr_sky < 0.25
    assert corr_raw > corr_sky + 0.2


def test_speckles_decorrelate_with_their_lifetime():
    data = make_adi_sequence(n_frames=60, speckle_lifetime_frames=4.0, seed=4)
    fluct = _flattened(data.cube, FWHM, 4 * FWHM)
    fluct = fluct - fluct.mean(axis=0)

    def lag_corr(lag: int) -> float:
        return float(np.mean([np.corrcoef(fluct[i], fluct[i + lag])[0, 1] for i in range(len(fluct) - lag)]))

    assert lag_corr(1) > 0.5
    assert lag_corr(1) > lag_corr(4) + 0.2
    assert lag_corr(20) < 0.2  # (negative: the sequence mean was subtracted)


# --- what a detection algorithm sees (vip-hci PCA-ADI as the oracle) ---------------------------


@pytest.mark.vip
def test_pca_adi_removes_most_of_the_pupil_fixed_light():
    data = make_adi_sequence(seed=0)
    final = _pca_adi(data.cube, data.angles_deg, ncomp=5)
    naive = cube_derotate(data.cube, data.angles_deg).mean(axis=0)  # derotate without subtracting
    r, _ = polar_coordinates(final.shape)
    band = (r >= FWHM) & (r < 4 * FWHM)
    assert final[band].std() < 0.2 * naive[band].std()
    # ...but not all of it: more components keep helping, as on real data (SPEC §5)
    assert _pca_adi(data.cube, data.angles_deg, ncomp=20)[band].std() < 0.6 * final[band].std()


@pytest.mark.vip
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bright_companion_is_recovered_at_its_position(seed):
    sep, theta = 4 * FWHM, 40.0 + 100.0 * seed
    flux = _flux_for_expected_snr(make_adi_sequence(seed=seed), sep, theta, target=20.0)
    data = make_adi_sequence(companions=[(sep, theta, flux)], seed=seed)
    final = _pca_adi(data.cube, data.angles_deg, ncomp=5)
    x, y = data.companion_positions_xy[0]
    assert snr(final, (x, y), FWHM) >= 8  # PCA absorbs part of a bright companion: 20 -> 11-17
    smap = snr_map(final, FWHM)
    py, px = np.unravel_index(np.argmax(smap), smap.shape)
    assert math.hypot(px - x, py - y) <= 1.5


def _faint_companion_trials(sep_px: float, seeds: range) -> tuple[np.ndarray, np.ndarray]:
    """S/N of a companion injected at S/N ~ 2 and the highest S/N map peak 2 FWHM or more from it."""
    comp_snr, false_peak = [], []
    for seed in seeds:
        plain = make_adi_sequence(seed=seed)
        for theta in 25.0 + 60.0 * np.arange(6) + 17.0 * seed:
            flux = _flux_for_snr(plain, sep_px, theta, target=2.0)
            if flux is not None:  # else this position already holds a noise peak above S/N 2
                break
        assert flux is not None
        data = make_adi_sequence(companions=[(sep_px, theta, flux)], seed=seed)
        final = _pca_adi(data.cube, data.angles_deg, ncomp=5)
        x, y = data.companion_positions_xy[0]
        comp_snr.append(snr(final, (x, y), FWHM))
        smap = snr_map(final, FWHM)
        yy, xx = np.indices(smap.shape)
        false_peak.append(smap[np.hypot(xx - x, yy - y) > 2 * FWHM].max())
    return np.array(comp_snr), np.array(false_peak)


@pytest.mark.vip
def test_faint_companion_is_not_found_trivially():
    # a companion at S/N ~ 2 in PCA-ADI (5 components) must compete with false peaks of
    # comparable height elsewhere in the S/N map: the task is not trivial
    comp_snr, false_peak = _faint_companion_trials(2.5 * FWHM, range(6))
    # the flux was calibrated on the companion-free cube: the regenerated one adds the companion's
    # photon noise and its (small) pull on the principal components
    assert abs(np.median(comp_snr) - 2.0) < 0.5
    assert np.all(np.abs(comp_snr - 2.0) < 1.5)
    assert np.mean(false_peak >= 0.7 * comp_snr) >= 5 / 6
    assert np.mean(false_peak > comp_snr) >= 0.5  # usually not even the brightest peak


@pytest.mark.vip
@pytest.mark.slow
@pytest.mark.parametrize("sep_fwhm", [1.5, 4.0, 6.0])
def test_faint_companion_is_not_found_trivially_at_any_separation(sep_fwhm):
    comp_snr, false_peak = _faint_companion_trials(sep_fwhm * FWHM, range(100, 116))
    assert abs(np.median(comp_snr) - 2.0) < 0.5
    assert np.mean(false_peak >= 0.7 * comp_snr) >= 0.9
    assert np.mean(false_peak > comp_snr) >= 0.75


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_frames": 1}, ValueError, "n_frames must be >= 2"),
        ({"n_frames": 10.0}, TypeError, "n_frames must be an integer"),
        ({"size_px": 20}, ValueError, "size_px=20 is too small.*pass size_px >= 24"),
        ({"fwhm_px": 0.0}, ValueError, "fwhm_px must be > 0"),
        ({"fwhm_px": -2.0}, ValueError, "fwhm_px must be > 0"),
        ({"fwhm_px": 1.5}, ValueError, "fwhm_px=1.5 px undersamples.*fwhm_px >= 2.1"),
        ({"fwhm_px": "4"}, TypeError, "fwhm_px must be a real number"),
        ({"field_rotation_deg": 0.0}, ValueError, r"field_rotation_deg must be in \(0, 360\]"),
        ({"field_rotation_deg": -30.0}, ValueError, "field_rotation_deg must be in"),
        ({"rotation_profile": "sigmoid"}, ValueError, "rotation_profile must be one of 'transit', 'linear'"),
        ({"companions": [(40.0, 0.0, 10.0)]}, ValueError, r"companion 0 has sep_px=40.*0 < sep_px < 29.5"),
        ({"companions": [(0.0, 0.0, 10.0)]}, ValueError, "companion 0 has sep_px=0"),
        ({"companions": [(10.0, 0.0, 5.0), (10.0, 0.0, -5.0)]}, ValueError, "companion 1 has a negative flux"),
        ({"companions": (10.0, 0.0, 5.0)}, ValueError, r"got a single triple.*companions=\[\(10.0, 0.0, 5.0\)\]"),
        ({"companions": [(10.0, 0.0)]}, ValueError, r"triples; got shape \(1, 2\)"),
        ({"companions": [(10.0, np.nan, 5.0)]}, ValueError, "NaN or infinite"),
        ({"companions": "planet"}, TypeError, "companions must be a sequence"),
        ({"star_flux": 0.0}, ValueError, "star_flux must be > 0"),
        ({"halo_contrast": -1e-3}, ValueError, "halo_contrast must be >= 0"),
        ({"speckle_drift_rad": -0.1}, ValueError, "speckle_drift_rad must be >= 0"),
        ({"speckle_lifetime_frames": 0.0}, ValueError, "speckle_lifetime_frames must be > 0"),
        ({"central_obstruction": 1.0}, ValueError, r"central_obstruction must be in \[0, 0.9\]"),
        ({"read_noise": -1.0}, ValueError, "read_noise must be >= 0"),
        ({"sky_flux": float("inf")}, ValueError, "sky_flux must be finite"),
        ({"pixel_scale_arcsec": 0.0}, ValueError, "pixel_scale_arcsec must be > 0"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"seed": 1.5}, TypeError, "seed must be an int, a numpy.random.Generator or None"),
        ({"seed": "0"}, TypeError, "seed must be an int"),
    ],
)
def test_bad_arguments_are_rejected_with_a_fix(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_adi_sequence(**kwargs)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        make_adi_sequence(10)  # type: ignore[misc]


def test_airy_psf_rejects_even_sizes():
    with pytest.raises(ValueError, match="size_px must be odd"):
        airy_psf(4.0, size_px=16)


@settings(max_examples=15, deadline=None)
@given(
    n_frames=st.integers(2, 12),
    size_px=st.integers(25, 48),
    fwhm_px=st.floats(2.1, 4.0),
    rotation=st.floats(1.0, 360.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_valid_configuration_gives_a_finite_sequence(n_frames, size_px, fwhm_px, rotation, seed):
    data = make_adi_sequence(
        n_frames=n_frames, size_px=size_px, fwhm_px=fwhm_px, field_rotation_deg=rotation, seed=seed
    )
    assert data.cube.shape == (n_frames, size_px, size_px)
    assert np.isfinite(data.cube).all()
    assert data.angles_deg[-1] - data.angles_deg[0] == pytest.approx(rotation)
    assert data.psf.shape[0] % 2 == 1 and data.psf.shape[0] <= size_px
