import os
import warnings

import numpy as np
import pytest
from astropy.io import fits

from sodinn.adi.io import read_angles, read_cube, read_psf, read_psf_stamp, unwrap_angles, write_fits
from sodinn.adi.psf import psf_centroid
from sodinn.exceptions import PSFWarning, SodinnWarning

from ..conftest import gaussian_psf, offset_psf


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


def test_read_psf_recentres_an_off_centre_stamp(tmp_path):
    """The PSF is judged by its sub-pixel centroid on reading, not by its brightest pixel (issue 13, C)."""
    path = _write(tmp_path / "psf.fits", offset_psf(20, -0.5, -0.5))  # symmetric about (9.5, 9.5)
    with pytest.warns(PSFWarning, match=r"psf in psf.fits is off-centre: .* 0.707 px .*recentred"):
        stamp = read_psf(path)
    np.testing.assert_allclose(psf_centroid(stamp), (10.0, 10.0), atol=1e-3)
    with pytest.warns(PSFWarning, match="recentred"):
        read = read_psf_stamp(path)
    np.testing.assert_array_equal(read.stamp, stamp)
    assert read.recentred and read.n_averaged == 1
    assert read.offset_xy_px == (pytest.approx(-0.5, abs=1e-4), pytest.approx(-0.5, abs=1e-4))
    with pytest.raises(ValueError, match=r"psf in far.fits is off-centre: .* 3.000 px .*more than a centring error"):
        read_psf(_write(tmp_path / "far.fits", offset_psf(21, 3.0, 0.0)))


def test_read_psf_keeps_a_centred_stamp_as_stored(naco_paths):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = read_psf_stamp(naco_paths["psf"])
    np.testing.assert_array_equal(read.stamp, fits.getdata(naco_paths["psf"]).astype(np.float64))
    assert not read.recentred and read.n_averaged == 1 and np.hypot(*read.offset_xy_px) == pytest.approx(0.0211, abs=1e-4)


def test_a_psf_cube_averaged_into_one_stamp_is_reported(tmp_path):
    """39 IFS channels averaged into one stamp: a PSFWarning naming how many, and read_psf_stamp counts them."""
    cube = np.stack([offset_psf(21, fwhm=f) for f in np.linspace(3.0, 5.0, 39)])
    path = _write(tmp_path / "ifs_psf.fits", cube)
    with pytest.warns(PSFWarning, match=r"ifs_psf.fits holds 39 PSF stamps \(shape \(39, 21, 21\)\); averaged them into one 21x21"):
        read = read_psf_stamp(path)
    assert read.n_averaged == 39 and not read.recentred
    np.testing.assert_allclose(read.stamp, cube.mean(axis=0))
    with pytest.warns(PSFWarning, match="39 PSF stamps"):
        read_psf(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = read_psf_stamp(_write(tmp_path / "one.fits", cube[:1]))  # one stamp in a cube: nothing averaged
    assert single.n_averaged == 1
    np.testing.assert_array_equal(single.stamp, cube[0])


def test_sky_header_gives_the_scale_the_orientation_and_a_readable_wcs(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    from sodinn.adi.io import sky_header, write_fits

    path = write_fits(tmp_path / "frame.fits", np.zeros((101, 101)), provenance={"function": "f"},
                      header={**sky_header(101, pixel_scale_arcsec=0.0272, north_offset_deg=-104.39), "BUNIT": ("adu", "")})
    h = fits.getheader(path)
    assert h["PIXSCALE"] == 0.0272 and h["NORTHOFF"] == -104.39 and h["ORIENT"] == "north up, east left"
    assert h["BUNIT"] == "adu" and h["STARX"] == 51.0 and h["SODINN FUNCTION"] == "f"
    east, north = WCS(h).wcs_pix2world([[50.0, 60.0], [40.0, 50.0]], 0).T  # 10 px north, then 10 px east of the star
    np.testing.assert_allclose(east, [0.0, 0.272], atol=1e-9)
    np.testing.assert_allclose(north, [0.272, 0.0], atol=1e-9)
    plain = sky_header(64)
    assert "PIXSCALE" not in plain and plain["STARX"][0] == 33.0 and "if the angles hold it" in plain["ORIENT"][0]
