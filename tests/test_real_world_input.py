"""Observers' messy inputs (issue #13): each kind of fault refused or handled at every entry point it touches.

Kinds here: B (messages name a setting that exists for whoever reads them), D (positions checked against the
frame), the FITS layouts (HDUs, angles in a table column, which HDU was read), and the NaN policy (frames
without any finite pixel dropped with their angles).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from sodinn.adi.io import apply_nan_policy, read_angles, read_cube, read_psf, select_hdu, write_fits
from sodinn.adi.sequence import ADISequence
from sodinn.adi.snr import snr
from sodinn.cli import main
from sodinn.cli.commands import FLAGS, cli_setting
from sodinn.cli.main import build_parser
from sodinn.config import RocConfig, SampleConfig
from sodinn.detect.scoring import score_blobs
from sodinn.evaluate.contrast import known_positions
from sodinn.exceptions import SettingError, SodinnWarning
from sodinn.mlar.samples import plan_samples

from .conftest import gaussian_psf


def _sequence_files(folder, *, n_frames=12, size=41, nan_frames=(), nan_pixels=0, seed=0):
    """Write a small cube / angles / PSF triple; return the paths and the arrays."""
    rng = np.random.default_rng(seed)
    cube = rng.normal(size=(n_frames, size, size))
    for i in nan_frames:
        cube[i] = np.nan
    for _ in range(nan_pixels):
        cube[rng.integers(n_frames), rng.integers(size), rng.integers(size)] = np.inf
    angles = np.linspace(0.0, 60.0, n_frames)
    paths = {"cube": write_fits(folder / "cube.fits", cube), "angles": write_fits(folder / "angles.fits", angles),
             "psf": write_fits(folder / "psf.fits", gaussian_psf(15, 4.0))}
    return paths, cube, angles


def _cli_error(capsys, argv):
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err and err.strip().endswith(lines[0]), err
    return lines[0]


# ----------------------------------------------------------------------------- FITS layouts


def test_a_cube_after_a_small_primary_image_is_found_and_the_hdu_is_recorded(tmp_path):
    cube = np.random.default_rng(1).normal(size=(5, 21, 21))
    path = tmp_path / "cube.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4))), fits.ImageHDU(cube, name="SCI")]).writeto(path)
    np.testing.assert_array_equal(read_cube(path), cube)
    choice = select_hdu(path, "cube")
    assert (choice.index, choice.name, choice.shape) == (1, "SCI", (5, 21, 21))
    assert str(choice) == "HDU 1 ('SCI')"
    np.testing.assert_array_equal(read_cube(path, hdu="sci"), cube)  # EXTNAME, case-insensitive
    with pytest.raises(SettingError, match=r"HDU 0 of cube.fits holds a 2-D image \(4x4\), not a 3-D cube.*hdu"):
        read_cube(path, hdu=0)
    with pytest.raises(SettingError, match=r"has 2 HDU\(s\) \(0 to 1\); HDU 5 does not exist"):
        read_cube(path, hdu=5)
    with pytest.raises(SettingError, match="no HDU named 'RAW'.*PRIMARY, SCI"):
        read_cube(path, hdu="RAW")


def test_no_hdu_of_the_right_kind_lists_what_each_holds(tmp_path):
    path = tmp_path / "two.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4))), fits.ImageHDU(np.zeros(7))]).writeto(path)
    with pytest.raises(SettingError, match=r"holds no 3-D image.*HDU 0: 2-D image 4x4; HDU 1: 1-D image 7.*hdu"):
        read_cube(path)


def test_angles_in_a_table_column_are_read(tmp_path):
    angles = np.linspace(-20.0, 30.0, 9)
    path = tmp_path / "angles.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="MJD", format="D", array=np.arange(9.0)),
                                           fits.Column(name="PARANG", format="D", array=angles)], name="ANGLES")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    np.testing.assert_array_equal(read_angles(path), angles)
    assert str(select_hdu(path, "angles")) == "HDU 1 ('ANGLES') column 'PARANG'"
    np.testing.assert_array_equal(read_angles(path, column="mjd"), np.arange(9.0))
    with pytest.raises(SettingError, match="no column 'ROT'; fix column"):
        read_angles(path, column="ROT")


def test_a_table_whose_angle_column_cannot_be_told_is_refused_with_its_columns(tmp_path):
    path = tmp_path / "angles.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="T1", format="D", array=np.arange(4.0)),
                                           fits.Column(name="T2", format="D", array=np.arange(4.0))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(SettingError, match="HDU 1 of angles.fits is a table with columns T1, T2; name the column"):
        read_angles(path)
    with pytest.raises(SettingError, match="is a table with columns T1, T2, not a cube"):
        read_cube(path, hdu=1)


def test_from_fits_names_its_own_parameters_and_records_the_hdus(tmp_path):
    paths, cube, angles = _sequence_files(tmp_path)
    seq = ADISequence.from_fits(paths["cube"], paths["angles"], paths["psf"])
    assert seq.provenance["cube_hdu"] == "HDU 0 ('PRIMARY')"
    with pytest.raises(SettingError, match="fix angles_hdu"):
        ADISequence.from_fits(paths["cube"], paths["angles"], paths["psf"], angles_hdu=3)
    with pytest.raises(SettingError, match="fix cube_hdu"):
        ADISequence.from_fits(paths["cube"], paths["angles"], paths["psf"], cube_hdu=2)


# ----------------------------------------------------------------------------- NaN policy


def test_a_frame_without_finite_pixels_is_dropped_with_its_angle(tmp_path):
    paths, cube, angles = _sequence_files(tmp_path, nan_frames=(3,), nan_pixels=2)
    with pytest.raises(SettingError, match="nan_policy='zero'"):
        ADISequence.from_fits(paths["cube"], paths["angles"], paths["psf"])
    with pytest.warns(SodinnWarning) as caught:
        seq = ADISequence.from_fits(paths["cube"], paths["angles"], paths["psf"], nan_policy="zero")
    messages = [str(w.message) for w in caught]
    assert any("dropped 1 frame(s) without any finite pixel (3) and their angles" in m for m in messages), messages
    assert any("2 NaN/inf pixel(s) set to 0" in m for m in messages), messages
    keep = [i for i in range(12) if i != 3]
    np.testing.assert_array_equal(seq.angles_deg, angles[keep])
    assert seq.n_frames == 11 and np.isfinite(seq.cube).all()
    assert seq.provenance["dropped_frames"] == [3]
    clean = cube[keep]
    bad = ~np.isfinite(clean)
    assert bad.sum() >= 1 and (seq.cube[bad] == 0).all()  # isolated bad pixels are zeroed, not dropped
    with pytest.raises(ValueError, match=r"frame\(s\) 3 hold no finite pixel.*drop them with their angles"):
        read_cube(paths["cube"], nan_policy="zero")


def test_apply_nan_policy_refuses_a_cube_of_empty_frames():
    with pytest.raises(SettingError, match="no frame holds a finite pixel"):
        apply_nan_policy(np.full((3, 9, 9), np.nan), np.zeros(3), "zero")


def test_the_nan_policy_is_a_flag_and_a_config_key(tmp_path, capsys):
    paths, _, _ = _sequence_files(tmp_path, nan_frames=(0,))
    files = ["--cube", str(paths["cube"]), "--angles", str(paths["angles"]), "--psf", str(paths["psf"])]
    line = _cli_error(capsys, ["reduce", *files, "--method", "median", "-o", str(tmp_path / "r")])
    assert "--nan-policy zero" in line and "nan_policy='zero'" not in line
    assert main(["reduce", *files, "--method", "median", "--nan-policy", "zero", "-o", str(tmp_path / "r"), "-q"]) == 0
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\ncube = "{paths["cube"]}"\nangles = "{paths["angles"]}"\npsf = "{paths["psf"]}"\n'
                      'nan_policy = "zero"\n[reduce]\nmethod = "median"\n')
    assert main(["reduce", "--config", str(config), "-o", str(tmp_path / "r2"), "-q"]) == 0


def test_hdu_flags_reach_the_reader(tmp_path, capsys):
    paths, cube, angles = _sequence_files(tmp_path)
    moved = tmp_path / "angles_table.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="A", format="D", array=angles), fits.Column(name="B", format="D", array=angles)])]).writeto(moved)
    files = ["--cube", str(paths["cube"]), "--angles", str(moved), "--psf", str(paths["psf"])]
    line = _cli_error(capsys, ["reduce", *files, "--method", "median", "-o", str(tmp_path / "r")])
    assert "name the column of the parallactic angles with --angles-column" in line
    assert main(["reduce", *files, "--angles-column", "B", "--method", "median", "-o", str(tmp_path / "r"), "-q"]) == 0
    line = _cli_error(capsys, ["reduce", *files, "--angles-hdu", "0", "--method", "median", "-o", str(tmp_path / "r3")])
    assert "HDU 0 of angles_table.fits holds no data" in line and line.endswith("name another one with --angles-hdu (or [data] angles_hdu)")


def test_info_says_which_hdu_it_read_and_fails_on_a_mismatch(tmp_path, capsys):
    paths, _, _ = _sequence_files(tmp_path)
    assert main(["info", str(paths["cube"]), str(paths["angles"])]) == 0
    out = capsys.readouterr().out
    assert "[HDU 0 ('PRIMARY')]" in out and "(consistent)" in out
    short = write_fits(tmp_path / "short.fits", np.linspace(0, 30, 5))
    assert main(["info", str(paths["cube"]), str(short)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert main(["info", "--json", str(paths["cube"]), str(short)]) == 1


# ----------------------------------------------------------------------------- kind B: messages name settings


def test_every_flag_of_the_settings_table_exists_on_its_commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    dests = {name: {a.dest for a in p._actions} for name, p in sub.choices.items()}
    for section, flags in FLAGS.items():
        commands = [c for c, d in dests.items() if set(flags) & d]
        assert commands, section
    form = cli_setting("reduce", dests["reduce"])
    assert form("nan_policy", "zero") == '--nan-policy zero (or [data] nan_policy = "zero")'
    assert form("cube_hdu", None) == "--cube-hdu (or [data] cube_hdu)"
    assert form("allow_small_rotation", True) == "--allow-small-rotation (or [data] allow_small_rotation = true)"
    assert cli_setting("samples", dests["samples"])("oracle_ncomp", 5) == "[samples] oracle_ncomp = 5 in --config"
    assert cli_setting("samples", dests["samples"])("known_sources_xy", None) == "--mask (or [samples] known_sources_xy)"
    assert cli_setting("survey", dests["survey"])("known_sources_xy", None) == "known_sources_xy in the survey configuration"


def test_every_setting_named_in_a_setting_error_exists_for_python_or_a_command():
    """Static check: each name given to SettingError in the package is a parameter or configuration field."""
    import inspect
    from pathlib import Path

    import sodinn
    from sodinn import config as cfg

    fields = set()
    for obj in vars(cfg).values():
        if inspect.isclass(obj) and hasattr(obj, "__dataclass_fields__"):
            fields |= set(obj.__dataclass_fields__)
    source = "\n".join(p.read_text() for p in Path(sodinn.__file__).parent.rglob("*.py"))
    named = set(re.findall(r"SettingError\([^)]*?\b(\w+)=", source, flags=re.S)) - {"template"}
    named |= set(re.findall(r"\.renamed\((?:\w+=\"(\w+)\",?\s*)+", source))
    params = set()
    for module in (p for p in Path(sodinn.__file__).parent.rglob("*.py")):
        params |= set(re.findall(r"(\w+)\s*:\s*[\w.| \[\],]+\s*=", module.read_text()))
    unknown = sorted(n for n in named if n not in fields and n not in params)
    assert unknown == []


def test_setting_error_renders_renames_and_prefixes():
    err = SettingError("bad {hdu} and {nan_policy}", hdu=None, nan_policy="zero")
    assert str(err) == "bad hdu and nan_policy='zero'"
    renamed = err.renamed(hdu="cube_hdu")
    assert str(renamed) == "bad cube_hdu and nan_policy='zero'"
    assert str(renamed.prefixed("target {1}")) == "target {1}: bad cube_hdu and nan_policy='zero'"
    assert isinstance(err, ValueError)


# ----------------------------------------------------------------------------- kind D: positions against the frame


def test_mask_outside_the_frame_is_refused_before_any_work(tmp_path, capsys):
    paths, _, _ = _sequence_files(tmp_path, n_frames=12, size=41)
    files = ["--cube", str(paths["cube"]), "--angles", str(paths["angles"]), "--psf", str(paths["psf"])]
    for xy in (["500", "500"], ["-3", "20"]):
        out = tmp_path / f"s{xy[0]}.h5"
        line = _cli_error(capsys, ["samples", *files, "--mask", *xy, "--mask", "27.07", "27.07", "-o", str(out)])
        assert "--mask" in line and "41x41 px frame" in line and "from 0 to 40 px" in line, line
        assert not out.exists() and not out.with_name(out.name + ".parts").exists()


_SIZE = 41
_outside = st.one_of(st.floats(-1e4, -0.01), st.floats(_SIZE - 1 + 0.01, 1e4))
_inside = st.floats(0, _SIZE - 1)


@settings(max_examples=25, deadline=None)
@given(x=_outside, y=_inside, swap=st.booleans())
def test_any_position_outside_the_frame_is_refused_at_every_entry_point(x, y, swap):
    xy = (y, x) if swap else (x, y)
    frame = np.random.default_rng(0).normal(size=(_SIZE, _SIZE))
    with pytest.raises(SettingError, match=f"{_SIZE}x{_SIZE} px frame"):
        snr(frame, xy, 4.0)
    with pytest.raises(SettingError, match="known_sources_xy"):
        score_blobs(frame, 1.0, None, 4.0, known_sources_xy=[xy])
    with pytest.raises(SettingError, match="known_sources_xy"):
        known_positions([xy], _SIZE)


@settings(max_examples=25, deadline=None)
@given(x=_inside, y=_inside)
def test_any_position_inside_the_frame_is_accepted(x, y):
    np.testing.assert_array_equal(known_positions([(x, y)], _SIZE), [[x, y]])


def test_samples_and_roc_refuse_known_sources_outside_the_frame(small_sequence):
    from sodinn.evaluate.roc import run_roc

    n = small_sequence.frame_size
    with pytest.raises(SettingError, match=f"known_sources_xy: \\({n}, 3\\) lies outside"):
        plan_samples(small_sequence, SampleConfig(known_sources_xy=((n, 3),)))
    with pytest.raises(SettingError, match="known_sources_xy"):
        run_roc(small_sequence, RocConfig(known_sources_xy=((3, -1),)))


def test_read_psf_refuses_a_file_whose_only_array_is_not_a_stamp(tmp_path):
    path = tmp_path / "psf.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros(5))]).writeto(path)
    with pytest.raises(ValueError, match=r"must be a 2-D stamp \(p, p\); got 1-D"):  # its only array: the shape check
        read_psf(path)


# ----------------------------------------------------------------------------- found by a fresh user's review


def _gauss(size, x0, y0, fwhm=4.0):
    yy, xx = np.indices((size, size))
    return np.exp(-4 * np.log(2) * ((xx - x0) ** 2 + (yy - y0) ** 2) / fwhm**2)


@pytest.mark.parametrize("sep_px", [7.0, 9.0])
def test_a_bright_neighbour_neither_moves_the_psf_centre_nor_widens_its_fwhm(sep_px):
    from sodinn.adi.injection import cube_inject_companions
    from sodinn.adi.psf import fit_fwhm, psf_centroid

    psf = _gauss(21, 10, 10) + 0.8 * _gauss(21, 10 + sep_px, 10)
    x, y = psf_centroid(psf)
    assert abs(x - 10) < 0.02 and abs(y - 10) < 1e-9  # was 0.29 px: the whole stamp's centroid
    assert fit_fwhm(psf) == pytest.approx(4.0, rel=0.03)  # was 8.2 px: the neighbour fitted too
    frame = cube_inject_companions(np.zeros((1, 41, 41)), psf, [0.0], sep_px=10, theta_deg=0, flux=1)[0]
    stamp = frame[10:31, 20:41]  # the injected PSF, its core at (30, 20) -> (10, 10) in the stamp
    cx, cy = psf_centroid(stamp)
    assert np.hypot(cx - 10, cy - 10) < 0.05


def test_the_stamps_of_a_psf_cube_are_recentred_before_averaging(tmp_path):
    from sodinn.adi.psf import fit_fwhm, psf_centroid
    from sodinn.exceptions import PSFWarning

    stamps = np.stack([_gauss(21, 10 + d, 10) for d in np.linspace(0.0, 1.5, 39)])  # drifting by 1.5 px
    path = write_fits(tmp_path / "psf.fits", stamps)
    with pytest.warns(PSFWarning, match=r"39 PSF stamps.*differ by up to 1.50 px: each was recentred"):
        psf = read_psf(path)
    np.testing.assert_allclose(psf_centroid(psf), (10, 10), atol=1e-3)
    assert fit_fwhm(psf) == pytest.approx(4.0, rel=0.01)  # not smeared into an ellipse


def test_a_cube_stored_with_a_leading_axis_of_one_is_read_and_two_channels_are_refused(tmp_path):
    cube = np.random.default_rng(3).normal(size=(6, 21, 21))
    fits.PrimaryHDU(cube[None]).writeto(tmp_path / "one.fits")
    np.testing.assert_array_equal(read_cube(tmp_path / "one.fits"), cube)
    fits.PrimaryHDU(np.stack([cube, cube])).writeto(tmp_path / "two.fits")
    with pytest.raises(ValueError, match=r"4-D.*\(2, 6, 21, 21\) \(several channels or wavelengths\?"):
        read_cube(tmp_path / "two.fits")


def test_an_output_that_would_overwrite_the_configuration_is_refused(tmp_path, capsys, monkeypatch):
    paths, _, _ = _sequence_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    data = f'[data]\ncube = "{paths["cube"]}"\nangles = "{paths["angles"]}"\npsf = "{paths["psf"]}"\n'
    (tmp_path / "x.toml").write_text(data + '[samples]\noutput = "x.h5"\n')
    (tmp_path / "config.toml").write_text(data + '[reduce]\nmethod = "median"\noutput = "."\n')
    before = {p.name: p.read_text() for p in tmp_path.glob("*.toml")}
    assert "would overwrite the configuration file x.toml" in _cli_error(capsys, ["samples", "-c", "x.toml"])
    assert "would overwrite the configuration file config.toml" in _cli_error(capsys, ["reduce", "-c", "config.toml"])
    (tmp_path / "config.toml").write_text(data + '[limits]\noutput = "."\n')
    before["config.toml"] = (tmp_path / "config.toml").read_text()
    assert "would overwrite the configuration file config.toml" in _cli_error(capsys, ["limits", "-c", "config.toml"])
    assert {p.name: p.read_text() for p in tmp_path.glob("*.toml")} == before


def test_info_reads_a_chosen_hdu_and_column_and_checks_the_science_cube(tmp_path, capsys):
    paths, cube, angles = _sequence_files(tmp_path)
    table = tmp_path / "angles_table.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="A", format="D", array=angles), fits.Column(name="B", format="D", array=angles[:-1].tolist() + [0])])
    ]).writeto(table)
    line = _cli_error(capsys, ["info", str(table)])
    assert line.endswith("name the column of the parallactic angles with --column")
    assert main(["info", str(table), "--column", "A"]) == 0
    assert "column 'A'" in capsys.readouterr().out
    stamps = write_fits(tmp_path / "psf_cube.fits", np.stack([gaussian_psf(15, 4.0)] * 5))
    short = write_fits(tmp_path / "short.fits", angles[:-1])
    assert main(["info", str(paths["cube"]), str(short), str(stamps)]) == 1  # 12 frames, 11 angles: the PSF cube aside
    out = capsys.readouterr().out
    assert "a cube of PSF stamps?" in out and "MISMATCH" in out
    assert main(["info", str(paths["psf"])]) == 0
    assert "core centroid (dx=+0.000, dy=+0.000) px from the stamp centre" in capsys.readouterr().out


def test_full_frame_reductions_warn_about_angles_in_radians():
    from sodinn.adi.baselines import median_adi, pca_adi
    from sodinn.exceptions import RotationWarning

    cube = np.random.default_rng(0).normal(size=(20, 41, 41))
    radians = np.deg2rad(np.linspace(-20, 20, 20))
    for reduce in (lambda: median_adi(cube, radians), lambda: pca_adi(cube, radians, ncomp=3)):
        with pytest.warns(RotationWarning, match=r"less than one pixel.*radians"):
            reduce()


def test_command_line_messages_name_flags_and_keys(tmp_path, capsys):
    paths, _, _ = _sequence_files(tmp_path, n_frames=12)
    files = ["--cube", str(paths["cube"]), "--angles", str(paths["angles"]), "--psf", str(paths["psf"])]
    line = _cli_error(capsys, ["samples", *files, "--ranks", "12", "-o", str(tmp_path / "s.h5")])
    assert "--ranks 11 (or [samples] n_ranks = 11)" in line
    line = _cli_error(capsys, ["reduce", *files, "--fwhm", "30", "-o", str(tmp_path / "r")])
    assert "set --fwhm (or [data] fwhm_px) in pixels" in line


def test_a_survey_target_with_angles_in_radians_fails_in_one_line_naming_its_key(tmp_path, capsys):
    from sodinn.datasets import make_adi_sequence

    data = make_adi_sequence(n_frames=12, size_px=41, fwhm_px=4.0, seed=1)
    for name, arr in (("cube", data.cube), ("angles", np.deg2rad(data.angles_deg)), ("psf", data.psf)):
        write_fits(tmp_path / f"{name}.fits", arr)
    config = tmp_path / "survey.toml"
    config.write_text('[train]\nmodel = "sodirf"\n[[targets]]\nname = "rad"\n'
                      'data = { cube = "cube.fits", angles = "angles.fits", psf = "psf.fits" }\n')
    assert main(["survey", str(config), "-o", str(tmp_path / "out"), "-q", "-j", "1"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "set allow_small_rotation = true if the rotation is right" in captured.out + captured.err
