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
