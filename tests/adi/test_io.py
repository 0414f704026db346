import os
import warnings

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from sodinn.adi.io import read_angles, read_cube, read_psf, read_psf_stamp, read_vip_npz, unwrap_angles, write_fits
from sodinn.adi.psf import psf_centroid
from sodinn.exceptions import PSFWarning, SettingError, SodinnWarning

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


# ---------------------------------------------------------------- VIP datasets saved as .npz


def _vip_save(vip, path, *, cube, angles, psf=None, psfn=None, fwhm=None, px_scale=None):
    """Save a VIP Dataset with vip-hci's own Dataset.save (prints its shapes: silenced)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from vip_hci.objects import Dataset

        Dataset(cube=cube, angles=angles, psf=psf, psfn=psfn, fwhm=fwhm, px_scale=px_scale).save(str(path))
    return path


@pytest.mark.vip
def test_read_vip_npz_reads_what_vip_dataset_save_wrote(vip, tmp_path, rng):
    cube, angles, psf = rng.normal(size=(6, 21, 21)), np.linspace(-20.0, 80.0, 6), gaussian_psf(9, 2.8)
    path = _vip_save(vip, tmp_path / "ds.npz", cube=cube, angles=angles, psf=psf, fwhm=2.8, px_scale=0.0272)
    raw = np.load(path, allow_pickle=True)  # what VIP wrote: None attributes as pickled objects
    assert raw["psfn"].dtype == object and raw["cuberef"].dtype == object
    data = read_vip_npz(path)
    assert np.array_equal(data.cube, cube) and np.array_equal(data.angles_deg, angles)
    assert np.array_equal(data.psf.stamp, psf) and not data.psf.recentred and data.psf_key == "psf"
    assert data.fwhm_px == 2.8 and data.pixel_scale_arcsec == 0.0272
    assert data.vip_version == vip.__version__


@pytest.mark.vip
def test_read_vip_npz_takes_psfn_without_psf_and_missing_fwhm_as_none(vip, tmp_path, rng):
    psfn = gaussian_psf(9, 3.0)
    path = _vip_save(vip, tmp_path / "ds.npz", cube=rng.normal(size=(5, 15, 15)), angles=np.arange(5.0) * 20, psfn=psfn)
    data = read_vip_npz(path)
    assert data.psf_key == "psfn" and np.array_equal(data.psf.stamp, psfn)
    assert data.fwhm_px is None and data.pixel_scale_arcsec is None
    with pytest.raises(ValueError, match="'psf' in .* is stored as a Python object .pickle; None when the Dataset had no psf"):
        read_vip_npz(path, psf_key="psf")  # asked for, but saved as None: an object, never unpickled
    np.savez(tmp_path / "plain.npz", cube=np.zeros((3, 9, 9)), angles=np.zeros(3), psfn=psfn)
    with pytest.raises(SettingError, match="has no member 'psf' .its members: cube, angles, psfn.; fix psf_key"):
        read_vip_npz(tmp_path / "plain.npz", psf_key="psf")


def test_read_vip_npz_refuses_pickled_members_with_the_fix(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, cube=np.zeros((3, 9, 9)), angles=np.array([None, 1, 2], dtype=object), psf=gaussian_psf(5, 2.0))
    with pytest.raises(ValueError, match=r"'angles' in .* is stored as a Python object .*allow_pickle=False.*"
                                         r"set dataset.angles to a numeric array"):
        read_vip_npz(path)
    np.savez(path, cube=np.zeros((3, 9, 9)), angles=np.zeros(3), psf=np.array(None), psfn=np.array(None))
    with pytest.raises(ValueError, match="'psf' in .* is stored as a Python object"):
        read_vip_npz(path)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: p.mkdir(), "is a folder; pass the .npz file"),
    (lambda p: p.write_text("[data]\n"), "is not a NumPy .npz archive"),
    (lambda p: p.write_bytes(b"\x93NUMPY" + b"\0" * 40), r"holds a single NumPy array \(.npy\)"),
    (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40), "cannot read .* as a NumPy .npz archive"),
    (lambda p: np.savez(p, angles=np.zeros(3), psf=np.ones((3, 3))), r"has no 'cube' array \(its members: angles, psf\)"),
    (lambda p: np.savez(p, cube=np.zeros((3, 9, 9)), psf=np.ones((3, 3))), "has no 'angles' array"),
    (lambda p: np.savez(p, cube=np.zeros((3, 9, 9)), angles=np.zeros(3)), "has no 'psf' array"),
    (lambda p: np.savez(p, cube=np.zeros((2, 3, 9, 9)), angles=np.zeros(3), psf=np.ones((3, 3))),
     r"4-D \(2, 3, 9, 9\) \(an IFS cube.*save one channel"),
    (lambda p: np.savez(p, cube=np.zeros((3, 9, 9)), angles=np.zeros(4), psf=gaussian_psf(5, 2.0)),
     "angles in bad.npz has 4 values but the cube has 3 frames"),
    (lambda p: np.savez(p, cube=np.zeros((3, 9, 9)), angles=np.array(["a", "b", "c"]), psf=np.ones((3, 3))),
     "'angles' in .* holds <U1 values, not numbers"),
    (lambda p: np.savez(p, cube=np.zeros((3, 9, 9)), angles=np.zeros(3), psf=gaussian_psf(5, 2.0),
                        fwhm=np.array([3.0, 3.1])), "fwhm in bad.npz holds 2 values"),
])
def test_read_vip_npz_refuses_what_is_not_a_vip_dataset_in_one_message(tmp_path, make, expected):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(ValueError, match=expected):
        read_vip_npz(path)


def test_read_vip_npz_names_missing_files_and_bad_psf_keys(tmp_path):
    with pytest.raises(FileNotFoundError, match="file not found: .*none.npz; check the path"):
        read_vip_npz(tmp_path / "none.npz")
    path = tmp_path / "ok.npz"
    np.savez(path, cube=np.zeros((3, 9, 9)), angles=np.zeros(3), psf=gaussian_psf(5, 2.0))
    with pytest.raises(SettingError, match="psf_key must be one of 'psf', 'psfn'; got 'PSF'"):
        read_vip_npz(path, psf_key="PSF")


@settings(max_examples=25, deadline=None)
@given(turns=st.lists(st.integers(-2, 2), min_size=6, max_size=6), offset=st.floats(-180, 180))
def test_read_vip_npz_unwraps_angles_as_the_fits_reader_does(tmp_path_factory, turns, offset):
    """Angles wrapped by any whole turns per frame read back as the same continuous sequence, from .npz and from FITS."""
    angles = offset + np.linspace(0.0, 100.0, 6)
    wrapped = angles + 360.0 * np.asarray(turns)
    folder = tmp_path_factory.mktemp("wrap")
    np.savez(folder / "ds.npz", cube=np.zeros((6, 9, 9)), angles=wrapped, psf=gaussian_psf(5, 2.0))
    from_npz = read_vip_npz(folder / "ds.npz").angles_deg
    from_fits = read_angles(_write(folder / "angles.fits", wrapped))
    assert np.array_equal(from_npz, from_fits)
    np.testing.assert_allclose(np.diff(from_npz), np.diff(angles), atol=1e-9)
    assert (from_npz[0] - angles[0]) % 360.0 == pytest.approx(0.0, abs=1e-9) or \
        (from_npz[0] - angles[0]) % 360.0 == pytest.approx(360.0, abs=1e-9)
