import json
import warnings

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from sodinn._validation import PSF_CENTRE_TOLERANCE_PX
from sodinn.adi.aperture import aperture_sums
from sodinn.adi.io import file_checksum
from sodinn.adi.psf import psf_centroid
from sodinn.adi.sequence import ADISequence
from sodinn.exceptions import PSFWarning, RotationWarning, SodinnWarning

from ..conftest import gaussian_psf, offset_psf


def _sequence(n_frames=4, size=21, angles=None, fwhm=3.0, **kwargs):
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(n_frames, size, size))
    angles = np.linspace(-10.0, 30.0, n_frames) if angles is None else angles
    return ADISequence(cube, angles, gaussian_psf(9, fwhm), fwhm, **kwargs)


def _write(path, data):
    fits.PrimaryHDU(np.asarray(data)).writeto(path)
    return path


def test_sequence_from_fits_and_checks(naco_paths, tmp_path):
    seq = ADISequence.from_fits(naco_paths["cube"], naco_paths["angles"], naco_paths["psf"], pixel_scale_arcsec=0.0272)
    assert seq.n_frames == 61 and seq.frame_size == 101 and seq.center_yx == (50, 50)
    assert 4.6 <= seq.fwhm_px <= 4.9
    assert seq.field_rotation_deg == pytest.approx(81.37, abs=0.01)
    assert seq.provenance["cube_sha256"] == file_checksum(naco_paths["cube"])
    assert seq.px_to_arcsec(17.8) == pytest.approx(0.484, abs=1e-3)
    with pytest.raises(ValueError):
        seq.cube[0, 0, 0] = 1.0  # read-only
    psf = gaussian_psf(9, 3.0)
    cube = np.zeros((4, 21, 21))
    with pytest.raises(ValueError, match="angles_deg has 3 values but the cube has 4 frames"):
        ADISequence(cube, np.zeros(3), psf, 3.0)
    with pytest.raises(ValueError, match="larger than the frames"):
        ADISequence(cube, np.zeros(4), gaussian_psf(25, 3.0), 3.0)
    with pytest.raises(ValueError, match="absurd"):
        ADISequence(cube, np.zeros(4), psf, 30.0)
    with pytest.raises(ValueError, match="pixel_scale_arcsec must be > 0"):
        ADISequence(cube, np.zeros(4), psf, 3.0, pixel_scale_arcsec=0)
    with pytest.raises(ValueError, match="no pixel_scale_arcsec"):
        ADISequence(cube, np.zeros(4), psf, 3.0).px_to_arcsec(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ADISequence(cube, np.linspace(0, 90, 4)[:, None], psf, 3.0).angles_deg.shape == (4,)


def test_arrays_are_read_only_copies():
    cube = np.ones((3, 15, 15))
    angles = np.array([0.0, 10.0, 20.0])
    psf = gaussian_psf(9, 3.0)
    seq = ADISequence(cube, angles, psf, 3.0)
    for name in ("cube", "angles_deg", "psf"):
        arr = getattr(seq, name)
        assert not arr.flags.writeable and arr.dtype == np.float64
        with pytest.raises(ValueError, match="read-only"):
            arr[(0,) * arr.ndim] = 5.0
    cube[0, 0, 0] = 7.0  # the caller's arrays stay theirs: the sequence holds copies
    angles[0] = 99.0
    assert seq.cube[0, 0, 0] == 1.0 and seq.angles_deg[0] == 0.0
    assert cube.flags.writeable  # and the caller's arrays stay writeable
    with pytest.raises(AttributeError):
        seq.fwhm_px = 4.0  # frozen


def test_provenance_is_copied():
    prov = {"origin": "test"}
    seq = _sequence(provenance=prov)
    prov["origin"] = "changed"
    assert seq.provenance == {"origin": "test"}


@pytest.mark.parametrize(("angles", "rotation"), [([-14.0, 0.0, 30.0, 67.5], 81.5), ([50.0, 40.0, 45.0, 41.0], 10.0)])
def test_field_rotation_is_the_angle_range(angles, rotation):
    assert _sequence(angles=np.array(angles)).field_rotation_deg == pytest.approx(rotation)


def test_shape_properties():
    seq = _sequence(n_frames=5, size=22)
    assert (seq.n_frames, seq.frame_size) == (5, 22)
    assert seq.center_yx == (11, 11)  # N // 2 for even N (SPEC §1)
    assert _sequence(size=21).center_yx == (10, 10)  # (N - 1) / 2 for odd N
    np.testing.assert_allclose(_sequence(pixel_scale_arcsec=0.01).px_to_arcsec([10.0, 25.0]), [0.1, 0.25])


def test_describe_is_json_and_carries_provenance():
    seq = _sequence(angles=np.array([-5.0, 0.0, 10.0, 20.0]), pixel_scale_arcsec=0.0272, provenance={"origin": "unit test"})
    info = seq.describe()
    assert json.loads(json.dumps(info)) == info
    assert info == {
        "n_frames": 4,
        "frame_size_px": 21,
        "psf_size_px": 9,
        "fwhm_px": 3.0,
        "pixel_scale_arcsec": 0.0272,
        "angles_deg_range": [-5.0, 20.0],
        "field_rotation_deg": 25.0,
        "north_offset_deg": 0.0,
        "origin": "unit test",
    }


def test_psf_normalized_has_unit_flux_in_one_fwhm_aperture():
    seq = _sequence(fwhm=3.4)
    norm = seq.psf_normalized
    c = norm.shape[0] // 2
    flux = aperture_sums(norm, np.array([[c, c]], dtype=float), seq.fwhm_px / 2)[0]
    assert flux == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(norm / norm.max(), seq.psf / seq.psf.max(), rtol=1e-12)  # a scaled copy
    assert seq.psf.max() == pytest.approx(1.0)  # the PSF itself is kept as given


def test_from_fits_provenance_and_given_fwhm(tmp_path):
    rng = np.random.default_rng(1)
    cube_p = _write(tmp_path / "cube.fits", rng.normal(size=(3, 17, 17)).astype(np.float32))
    angles_p = _write(tmp_path / "angles.fits", np.array([[0.0], [5.0], [12.0]]))
    psf_p = _write(tmp_path / "psf.fits", gaussian_psf(11, 3.0))
    fitted = ADISequence.from_fits(cube_p, angles_p, psf_p)
    assert fitted.provenance["fwhm_source"] == "fit" and fitted.fwhm_px == pytest.approx(3.0, rel=1e-3)
    given = ADISequence.from_fits(cube_p, angles_p, psf_p, fwhm_px=2.5, pixel_scale_arcsec=0.01)
    assert given.provenance["fwhm_source"] == "given" and given.fwhm_px == 2.5
    for role, path in (("cube", cube_p), ("angles", angles_p), ("psf", psf_p)):
        assert given.provenance[f"{role}_file"] == str(path.resolve())
        assert given.provenance[f"{role}_sha256"] == file_checksum(path)
    assert given.describe()["cube_sha256"] == file_checksum(cube_p)
    assert given.cube.dtype == np.float64 and given.field_rotation_deg == 12.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(cube=np.zeros((21, 21))), ValueError, r"cube must be a 3-D array .* \(a single frame\?"),
        (dict(cube=np.zeros((4, 21, 23))), ValueError, "cube frames must be square; got 21x23 px"),
        (dict(cube=np.full((4, 21, 21), np.nan)), ValueError, r"cube contains 1764 NaN or infinite value\(s\)"),
        (dict(cube=np.zeros((1, 21, 21)), angles=np.zeros(1)), ValueError, "an ADI sequence needs at least 2 frames"),
        (dict(angles=np.zeros((2, 2))), ValueError, r"angles_deg must be 1-D \(one angle per frame\)"),
        (dict(angles=np.array([0.0, np.inf, 1.0, 2.0])), ValueError, "angles_deg contains 1 NaN or infinite"),
        (dict(psf=np.ones((9, 7))), ValueError, "psf must be square; got 9x7 px"),
        (dict(psf=np.roll(gaussian_psf(9, 3.0), 3, axis=1)), ValueError, "psf is off-centre"),
        (dict(fwhm=0.3), ValueError, "a FWHM of 0.3 px is below the sampling limit"),
        (dict(fwhm=-1.0), ValueError, "fwhm_px must be > 0"),
        (dict(fwhm="3"), TypeError, "fwhm_px must be a real number; got str"),
        (dict(cube="cube.fits"), TypeError, "cube must be array-like of numbers; got str"),
        (dict(pixel_scale_arcsec=float("nan")), ValueError, "pixel_scale_arcsec must be finite"),
    ],
)
def test_bad_inputs_are_refused_with_their_message(kwargs, error, match):
    args = {"cube": np.zeros((4, 21, 21)), "angles": np.zeros(4), "psf": gaussian_psf(9, 3.0), "fwhm": 3.0,
            "pixel_scale_arcsec": None}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ADISequence(args["cube"], args["angles"], args["psf"], args["fwhm"], args["pixel_scale_arcsec"])


@settings(max_examples=20, deadline=None)
@given(size=st.sampled_from([14, 15, 20, 21]), dx=st.floats(-1.0, 1.0), dy=st.floats(-1.0, 1.0))
def test_sequence_holds_the_recentred_psf(size, dx, dy):
    """ADISequence keeps a centred PSF: every injection made from it (psf, psf_normalized) is centred."""
    cube = np.random.default_rng(0).normal(size=(3, 41, 41))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seq = ADISequence(cube, [0.0, 10.0, 20.0], offset_psf(size, dx, dy), 4.0)
    c = size // 2
    target = (c, c) if np.hypot(dx, dy) > PSF_CENTRE_TOLERANCE_PX else (c + dx, c + dy)  # kept as given within 0.03 px
    for stamp in (seq.psf, seq.psf_normalized):
        np.testing.assert_allclose(psf_centroid(stamp), target, atol=1e-3)
    recentred = [w for w in caught if issubclass(w.category, PSFWarning)]
    if np.hypot(dx, dy) > 0.031:
        assert len(recentred) == 1 and seq.provenance["psf_recentred"] is True
        assert seq.provenance["psf_offset_xy_px"] == [pytest.approx(dx, abs=2e-4), pytest.approx(dy, abs=2e-4)]
    elif np.hypot(dx, dy) < 0.029:
        assert recentred == [] and "psf_offset_xy_px" not in seq.provenance


def test_from_fits_records_psf_offset_and_averaged_stamps(tmp_path):
    """from_fits reports (once) and records a recentred PSF and a PSF cube averaged into one stamp."""
    rng = np.random.default_rng(1)
    cube_p = _write(tmp_path / "cube.fits", rng.normal(size=(3, 31, 31)))
    angles_p = _write(tmp_path / "angles.fits", np.array([0.0, 5.0, 12.0]))
    stamps = np.stack([offset_psf(21, 1.0, 0.0, fwhm=4.0)] * 39)  # 39 IFS channels, centroid 1 px right
    psf_p = _write(tmp_path / "psf.fits", stamps)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seq = ADISequence.from_fits(cube_p, angles_p, psf_p, fwhm_px=4.0)
    messages = [str(w.message) for w in caught if issubclass(w.category, PSFWarning)]
    assert len(messages) == 2
    assert "holds 39 PSF stamps" in messages[0] and "1.000 px" in messages[1] and "recentred" in messages[1]
    assert seq.provenance["psf_averaged_stamps"] == 39 and seq.provenance["psf_recentred"] is True
    assert seq.provenance["psf_offset_xy_px"] == [pytest.approx(1.0, abs=1e-4), pytest.approx(0.0, abs=1e-4)]
    np.testing.assert_allclose(psf_centroid(seq.psf), (10.0, 10.0), atol=1e-3)
    assert seq.describe()["psf_averaged_stamps"] == 39


# ---------------------------------------------------------------- issue 13: angles as given in Python


def test_wrapped_angles_are_unwrapped_and_rotation_is_40_deg():
    psf = np.exp(-np.hypot(*np.indices((9, 9)) - 4) ** 2 / 2)
    cube = np.random.default_rng(0).normal(size=(30, 51, 51))
    continuous = np.linspace(160.0, 200.0, 30)
    wrapped = (continuous + 180.0) % 360.0 - 180.0
    seq = ADISequence(cube, wrapped, psf, fwhm_px=4.0)
    assert seq.field_rotation_deg == pytest.approx(40.0, abs=1e-9)  # before: 357.5 / 358.6
    np.testing.assert_allclose(seq.angles_deg, continuous, rtol=0, atol=1e-9)
    assert ADISequence(cube, continuous, psf, fwhm_px=4.0).field_rotation_deg == pytest.approx(40.0, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(turns=st.lists(st.integers(-4, 4), min_size=6, max_size=6))
def test_field_rotation_ignores_whole_turns_per_frame(turns):
    psf = np.exp(-np.hypot(*np.indices((9, 9)) - 4) ** 2 / 2)
    angles = np.linspace(-20.0, 50.0, 6)
    seq = ADISequence(np.ones((6, 33, 33)), angles + 360.0 * np.asarray(turns), psf, fwhm_px=2.4)
    assert seq.field_rotation_deg == pytest.approx(70.0, abs=1e-9)
    np.testing.assert_allclose(np.diff(seq.angles_deg), np.diff(angles), rtol=0, atol=1e-9)


def test_angles_in_radians_warn():
    psf = np.exp(-np.hypot(*np.indices((9, 9)) - 4) ** 2 / 2)
    radians = np.deg2rad(np.linspace(160.0, 200.0, 30)) - np.pi  # the 40 deg sequence in radians, +-0.35
    with pytest.warns(RotationWarning, match=r"rotates by only 0\.698 deg.*radians"):
        ADISequence(np.ones((30, 51, 51)), radians, psf, fwhm_px=4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ADISequence(np.ones((30, 51, 51)), np.linspace(160.0, 200.0, 30), psf, fwhm_px=4.0)  # 40 deg: no warning


def test_the_north_offset_is_added_to_the_angles_and_recorded(naco_paths):
    from sodinn.adi.sky import NACO_BETAPIC_NORTH_OFFSET_DEG

    plain = ADISequence.from_fits(naco_paths["cube"], naco_paths["angles"], naco_paths["psf"])
    turned = ADISequence.from_fits(naco_paths["cube"], naco_paths["angles"], naco_paths["psf"],
                                   north_offset_deg=NACO_BETAPIC_NORTH_OFFSET_DEG)
    np.testing.assert_allclose(turned.angles_deg, plain.angles_deg + NACO_BETAPIC_NORTH_OFFSET_DEG)
    assert plain.north_offset_deg == 0.0 and plain.provenance["north_offset_deg"] == 0.0
    assert turned.north_offset_deg == NACO_BETAPIC_NORTH_OFFSET_DEG and turned.describe()["north_offset_deg"] == -104.39
    back = turned.with_north_offset(0.0)  # replaces the offset, never adds twice
    np.testing.assert_allclose(back.angles_deg, plain.angles_deg, atol=1e-12)
    np.testing.assert_allclose(plain.with_north_offset(10.0).with_north_offset(10.0).angles_deg, plain.angles_deg + 10)
    with pytest.raises(TypeError, match="north_offset_deg must be a real number"):
        plain.with_north_offset("north")


# ---------------------------------------------------------------- VIP .npz in, FITS out


def _npz(path, n_frames=6, size=21, fwhm=None, px_scale=None, **extra):
    rng = np.random.default_rng(3)
    members = {"cube": rng.normal(size=(n_frames, size, size)), "angles": np.linspace(-30.0, 70.0, n_frames),
               "psf": 5.0 * gaussian_psf(9, 3.0), **extra}
    if fwhm is not None:
        members["fwhm"] = np.array(fwhm)
    if px_scale is not None:
        members["px_scale"] = np.array(px_scale)
    np.savez(path, **members)
    return path, members


def test_from_npz_then_to_fits_round_trips_bit_for_bit(tmp_path):
    path, members = _npz(tmp_path / "ds.npz", fwhm=3.1, px_scale=0.0272)
    seq = ADISequence.from_npz(path)
    assert np.array_equal(seq.cube, members["cube"]) and np.array_equal(seq.angles_deg, members["angles"])
    assert np.array_equal(seq.psf, members["psf"]) and seq.fwhm_px == 3.1 and seq.pixel_scale_arcsec == 0.0272
    assert seq.provenance["fwhm_source"] == "npz" and seq.provenance["psf_key"] == "psf"
    assert seq.provenance["npz_sha256"] == file_checksum(path) and seq.provenance["npz_file"] == str(path.resolve())
    files = seq.to_fits(tmp_path / "fits")
    assert sorted(p.name for p in files.values()) == ["angles.fits", "cube.fits", "psf.fits"]
    back = ADISequence.from_fits(files["cube"], files["angles"], files["psf"], fwhm_px=seq.fwhm_px,
                                 pixel_scale_arcsec=seq.pixel_scale_arcsec)
    assert np.array_equal(back.cube, seq.cube) and np.array_equal(back.angles_deg, seq.angles_deg)
    assert np.array_equal(back.psf, seq.psf)
    header = fits.getheader(files["cube"])
    assert header["HIERARCH SODINN FWHM_PX"] == 3.1 and header["HIERARCH SODINN PIXEL_SCALE_ARCSEC"] == 0.0272
    assert header["HIERARCH SODINN NPZ_SHA256"] == file_checksum(path)


def test_from_npz_fwhm_and_scale_given_win_over_the_file_and_a_missing_fwhm_is_fitted(tmp_path):
    path, _ = _npz(tmp_path / "ds.npz", fwhm=3.1, px_scale=0.0272)
    seq = ADISequence.from_npz(path, fwhm_px=2.5, pixel_scale_arcsec=0.01225)
    assert (seq.fwhm_px, seq.pixel_scale_arcsec, seq.provenance["fwhm_source"]) == (2.5, 0.01225, "given")
    path, _ = _npz(tmp_path / "nofwhm.npz")
    seq = ADISequence.from_npz(path)
    assert seq.provenance["fwhm_source"] == "fit" and seq.fwhm_px == pytest.approx(3.0, rel=0.02)
    assert seq.pixel_scale_arcsec is None


def test_from_npz_applies_the_nan_policy_and_names_it(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(6, 21, 21))
    cube[2] = np.nan
    cube[4, 3, 3] = np.inf
    path, _ = _npz(tmp_path / "nan.npz", cube=cube)
    with pytest.raises(ValueError, match="NaN or infinite value.*nan_policy='zero'"):
        ADISequence.from_npz(path)
    with pytest.warns(SodinnWarning):
        seq = ADISequence.from_npz(path, nan_policy="zero")
    assert seq.n_frames == 5 and seq.provenance["dropped_frames"] == [2] and np.isfinite(seq.cube).all()


def test_from_npz_recentres_an_offset_psf_as_from_fits_does(tmp_path):
    path, _ = _npz(tmp_path / "off.npz", psf=offset_psf(15, dx=0.4, dy=-0.3, fwhm=3.0))
    with pytest.warns(PSFWarning, match="recentred"):
        seq = ADISequence.from_npz(path)
    assert seq.provenance["psf_recentred"] and seq.provenance["psf_offset_xy_px"] == pytest.approx([0.4, -0.3], abs=0.02)


def test_to_fits_refuses_existing_files_and_unwritable_folders_before_writing(tmp_path):
    seq = _sequence()
    seq.to_fits(tmp_path / "out")
    stamp = (tmp_path / "out" / "cube.fits").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="exist.*pass overwrite=True or choose another folder"):
        seq.to_fits(tmp_path / "out")
    assert (tmp_path / "out" / "cube.fits").stat().st_mtime_ns == stamp
    seq.to_fits(tmp_path / "out", overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="cannot write .*file: it is a file, not a folder; choose another folder"):
        seq.to_fits(tmp_path / "file")
