"""Shared fixtures: the real NACO beta Pic sequence (from ../shared/data) and tiny synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
NACO_DIR = Path(os.environ.get("SODINN_NACO_DIR", REPO.parent / "shared" / "data" / "naco_betapic"))
BETA_PIC_B_XY = (62.0, 63.0)  # annular PCA-ADI position of beta Pic b (data README)


def _naco_paths() -> dict[str, Path]:
    paths = {name: NACO_DIR / f"{name}.fits" for name in ("cube", "angles", "psf")}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        reason = f"real NACO data not found ({', '.join(missing)}); set SODINN_NACO_DIR or check out ../shared"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)
    return paths


@pytest.fixture(scope="session")
def naco_paths() -> dict[str, Path]:
    """Paths of the NACO cube, angles and PSF; skip with a reason if absent (fail when CI is set)."""
    return _naco_paths()


@pytest.fixture(scope="session")
def naco(naco_paths):
    """The NACO beta Pic sequence as an ADISequence (FWHM fitted, pixel scale 0.0272")."""
    from sodinn.adi.sequence import ADISequence

    return ADISequence.from_fits(
        naco_paths["cube"], naco_paths["angles"], naco_paths["psf"], pixel_scale_arcsec=0.0272
    )


@pytest.fixture(scope="session")
def vip():
    """vip-hci, the independent reference implementation (test-only dependency)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vip_hci

        # vip-hci loads its subpackages lazily; load the ones the tests use here, where its
        # import-time warnings (missing OpenCV, deprecations) are silenced
        for name in ("var", "preproc", "psfsub", "metrics", "fm"):
            getattr(vip_hci, name)
        import vip_hci.psfsub.svd  # noqa: F401

    return vip_hci


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def gaussian_psf(size: int = 15, fwhm: float = 3.0) -> np.ndarray:
    """A centred circular Gaussian stamp with the given FWHM (unit peak)."""
    c = size // 2
    yy, xx = np.indices((size, size))
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / (2 * sigma**2))


@pytest.fixture()
def small_cube(rng) -> tuple[np.ndarray, np.ndarray]:
    """A 12-frame 41x41 cube: a static pattern plus noise, and angles over 50 deg."""
    static = rng.normal(size=(41, 41)) * 5
    cube = static[None] + rng.normal(size=(12, 41, 41))
    return cube, np.linspace(-10.0, 40.0, 12)


def white_noise_sequence(sigma_px=2.0, n_frames=4, size=61, fwhm=4.0, seed=0, angles=None):
    """An ADISequence of Gaussian white noise (no speckles, no rotation unless ``angles``): a known noise."""
    from sodinn.adi.sequence import ADISequence

    rng = np.random.default_rng(seed)
    cube = rng.normal(0.0, sigma_px, size=(n_frames, size, size))
    angles = np.zeros(n_frames) if angles is None else angles
    return ADISequence(cube, angles, gaussian_psf(15, fwhm), fwhm)


def mean_frame(cube):
    """The simplest reduction: the mean over frames (no derotation)."""
    return cube.mean(axis=0)


def small_samples_config():
    """The sample settings used with :func:`small_sequence`."""
    from sodinn.config import SampleConfig

    return SampleConfig(patch_px=9, n_ranks=6, samples_per_annulus=10, seed=3, oracle_azimuths=1)


def small_flux_ranges(sequence):
    """Fixed flux bounds for every annulus of :func:`small_samples_config` (no S/N oracle run)."""
    from sodinn.mlar.samples import sample_annuli

    return np.array([[150.0, 450.0]] * len(sample_annuli(sequence, small_samples_config())))


@pytest.fixture(scope="session")
def small_sequence():
    """A 20-frame 49 x 49 px synthetic sequence (FWHM 4 px, 70 deg of rotation), for sample-file tests."""
    from sodinn.adi.sequence import ADISequence
    from sodinn.datasets import make_adi_sequence

    data = make_adi_sequence(n_frames=20, size_px=49, fwhm_px=4.0, field_rotation_deg=70.0, seed=8)
    return ADISequence(data.cube, data.angles_deg, data.psf, data.fwhm_px, data.pixel_scale_arcsec)


def offset_psf(size: int = 21, dx: float = 0.0, dy: float = 0.0, fwhm: float = 4.0, kind: str = "gaussian") -> np.ndarray:
    """A symmetric PSF (unit peak) centred at ``(size // 2 + dx, size // 2 + dy)``: a Gaussian or an Airy pattern of that FWHM."""
    c = size // 2
    yy, xx = np.indices((size, size))
    r = np.hypot(xx - c - dx, yy - c - dy)
    if kind == "gaussian":
        return np.exp(-(r**2) / (2 * (fwhm / (2 * np.sqrt(2 * np.log(2)))) ** 2))
    from scipy.special import j1

    u = np.maximum(r * 1.616340 * 2 / fwhm, 1e-12)  # Airy: FWHM = 1.029 lambda/D, half maximum at u = 1.61634
    return (2 * j1(u) / u) ** 2
