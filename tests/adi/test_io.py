import os

import numpy as np
import pytest
from astropy.io import fits

from sodinn.adi.io import read_angles, read_cube, read_psf, unwrap_angles, write_fits
from sodinn.exceptions import SodinnWarning

from ..conftest import gaussian_psf


def _write(path, data):
    fits.PrimaryHDU(np.asarray(data)).writeto(path)
    return path


def test_read_naco_files(naco_paths):
    cube = read_cube(naco_paths["cube"])
    angles = read_angles(naco_paths["angles"])
    psf = read_psf(naco_paths["psf"])
    assert cube.shape == (61, 101, 101) and cube.dtype == np.float64
    assert angles.shape == (61,)  # stored as (61, 1)
    assert angles[0] == pytest.approx(-14.27, abs=0.01) and angles[-1] == pytest.approx(67.10, abs=0.01)
    assert psf.shape == (39, 39)


def test_angles_unwrapped(tmp_path):
    raw = np.array([[170.0], [178.0], [-176.0], [-170.0]])
    angles = read_angles(_write(tmp_path / "a.fits", raw))
    np.testing.assert_allclose(angles, [170, 178, 184, 190])
    np.testing.assert_allclose(unwrap_angles([-170.0, 175.0]), [-170.0, -185.0])


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_cube(tmp_path / "missing.fits")
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(b"not a fits file" * 100)
    with pytest.raises(ValueError, match="valid, complete FITS"):
        read_cube(garbage)
    good = _write(tmp_path / "cube.fits", np.zeros((4, 16, 16), dtype=np.float32))
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="incomplete"):
        read_cube(truncated)
    with pytest.raises(ValueError, match="must be a 3-D array"):
        read_cube(_write(tmp_path / "frame.fits", np.zeros((16, 16))))
    with pytest.raises(ValueError, match="must be square"):
        read_cube(_write(tmp_path / "rect.fits", np.zeros((3, 16, 18))))
    with pytest.raises(ValueError, match="off-centre"):
        read_psf(_write(tmp_path / "psf.fits", np.roll(gaussian_psf(), 4, axis=1)))


def test_nan_policy(tmp_path):
    cube = np.ones((3, 9, 9))
    cube[1, 2, 3] = np.nan
    path = _write(tmp_path / "nan.fits", cube)
    with pytest.raises(ValueError, match="NaN or infinite.*nan_policy='zero'"):
        read_cube(path)
    with pytest.warns(SodinnWarning, match="1 NaN/inf pixel"):
        clean = read_cube(path, nan_policy="zero")
    assert clean[1, 2, 3] == 0 and np.isfinite(clean).all()
    with pytest.raises(ValueError, match="nan_policy must be one of"):
        read_cube(path, nan_policy="drop")


def test_write_fits_atomic_with_provenance(tmp_path):
    path = tmp_path / "out" / "frame.fits"
    frame = np.arange(25.0).reshape(5, 5)
    write_fits(path, frame, provenance={"function": "pca_adi", "ncomp": 10, "cevr": 0.9, "angles": [1, 2], "ok": True})
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(hdul[0].data, frame)
        header = hdul[0].header
        assert header["CREATOR"].startswith("sodinn ")
        assert header["SODINN FUNCTION"] == "pca_adi"
        assert header["SODINN NCOMP"] == 10
        assert header["SODINN ANGLES"] == "[1, 2]"
        assert header["SODINN OK"] is True
        assert "CHECKSUM" in header
    assert [p.name for p in path.parent.iterdir()] == ["frame.fits"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable by others, like any file
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_fits(path, frame, overwrite=False)


def test_write_fits_failure_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "frame.fits"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fits.PrimaryHDU, "writeto", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_fits(path, np.zeros((3, 3)))
    assert list(tmp_path.iterdir()) == []
