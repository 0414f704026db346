"""The detection-limit report: contrast_curve.csv (and the models' tables) and limits.png, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from sodinn.adi.sequence import ADISequence
from sodinn.evaluate.contrast import classical_contrast_curve
from sodinn.evaluate.limits import DetectionLimits
from sodinn.pipeline.limits import write_limits

from ..conftest import gaussian_psf

STAR_FLUX = 1.0e4


def _mean_frame(cube):
    return cube.mean(axis=0)


@pytest.fixture(scope="module")
def curve():
    """The classical curve of a mean-combined white-noise sequence at 6 and 10 px (no PCA: fast)."""
    rng = np.random.default_rng(0)
    seq = ADISequence(rng.normal(0.0, 2.0, size=(4, 61, 61)), np.zeros(4), gaussian_psf(15, 4.0), 4.0)
    return classical_contrast_curve(seq, reduce=_mean_frame, radii_px=[6.0, 10.0], n_azimuths=1)


@pytest.fixture(scope="module")
def limits():
    """Detection limits of one baseline at 2 separations, 3 flux levels, 2 copies each (made by hand)."""
    detected = np.array([[[False, False], [True, False], [True, True]], [[False, True], [True, True], [True, True]]])
    return DetectionLimits(
        radii_px=np.array([6.0, 10.0]), lambda_d_px=4.0, fluxes=np.array([[10.0, 20.0, 40.0], [5.0, 10.0, 20.0]]),
        snr1_flux=np.array([10.0, 5.0]), methods=["annular-10"], thresholds={"annular-10": np.array([5.0, 5.0])},
        detected={"annular-10": detected}, false_positives={"annular-10": np.zeros((2, 3, 2))},
        tpr_fit={"annular-10": detected.mean(axis=-1)}, flux_limit={"annular-10": np.array([40.0, np.nan])},
        tpr_target=0.95,
    )


def _csv(path):
    return Table.read(path, format="ascii.csv")


def test_classical_curve_table_and_figure(curve, tmp_path):
    written = write_limits(tmp_path / "limits", classical=curve)
    out = tmp_path / "limits"
    assert written == [out / "contrast_curve.csv", out / "limits.png"]
    assert sorted(p.name for p in out.iterdir()) == ["contrast_curve.csv", "limits.png"]  # no temporary files
    assert (out / "limits.png").read_bytes().startswith(b"\x89PNG")
    table = _csv(out / "contrast_curve.csv")
    rows = curve.rows()
    assert table.colnames == list(rows[0])
    assert "contrast" not in table.colnames  # no star flux: no contrast
    assert len(table) == len(rows) == 2
    for got, want in zip(table, rows):
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-15), key
    assert list(table["sep_px"]) == [6.0, 10.0]


def test_star_flux_adds_a_contrast_column(curve, tmp_path):
    write_limits(tmp_path, classical=curve, star_flux=STAR_FLUX)
    table = _csv(tmp_path / "contrast_curve.csv")
    assert table.colnames[-1] == "contrast"
    np.testing.assert_allclose(table["contrast"], curve.flux_limit / STAR_FLUX, rtol=1e-15)
    np.testing.assert_allclose(table["flux_limit"], curve.flux_limit, rtol=1e-15)


def test_detection_limits_tables_beside_the_classical_curve(curve, limits, tmp_path):
    written = write_limits(tmp_path, classical=curve, limits=limits, star_flux=STAR_FLUX)
    names = ["contrast_curve.csv", "detection_limits.csv", "tpr.csv", "limits.png"]
    assert written == [tmp_path / name for name in names]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    table = _csv(tmp_path / "detection_limits.csv")
    assert list(table["method"]) == ["annular-10", "annular-10"] and list(table["sep_px"]) == [6.0, 10.0]
    assert table["flux_limit"][0] == 40.0 and np.isnan(table["flux_limit"][1])  # NaN: outside the ladder
    assert table["contrast_limit"][0] == pytest.approx(40.0 / STAR_FLUX)
    tpr = _csv(tmp_path / "tpr.csv")
    assert len(tpr) == 6  # separations x flux levels
    assert list(tpr["tpr"]) == [0.0, 0.5, 1.0, 0.5, 1.0, 1.0]
    assert list(tpr["flux"]) == [10.0, 20.0, 40.0, 5.0, 10.0, 20.0]


def test_limits_alone_write_no_classical_table(limits, tmp_path):
    written = write_limits(tmp_path, limits=limits)
    assert [p.name for p in written] == ["detection_limits.csv", "tpr.csv", "limits.png"]
    assert "contrast_limit" not in _csv(tmp_path / "detection_limits.csv").colnames


def test_nothing_to_write_is_refused_before_the_folder_is_created(tmp_path):
    out = tmp_path / "limits"
    with pytest.raises(ValueError, match="nothing to write"):
        write_limits(out)
    with pytest.raises(ValueError, match="nothing to write"):
        write_limits(out, star_flux=STAR_FLUX)
    assert not out.exists()


def test_bad_star_flux_is_refused_before_any_file(curve, tmp_path):
    out = tmp_path / "limits"
    with pytest.raises(ValueError, match="star_flux must be > 0"):
        write_limits(out, classical=curve, star_flux=-1.0)
    assert not out.exists()


def test_the_star_flux_given_replaces_the_curves_own(curve, tmp_path):
    import dataclasses

    own = dataclasses.replace(curve, star_flux=10.0)
    write_limits(tmp_path, classical=own, star_flux=STAR_FLUX)
    np.testing.assert_allclose(_csv(tmp_path / "contrast_curve.csv")["contrast"], curve.flux_limit / STAR_FLUX, rtol=1e-15)
    write_limits(tmp_path / "own", classical=own)  # without one, the curve's own gives the contrast
    np.testing.assert_allclose(_csv(tmp_path / "own" / "contrast_curve.csv")["contrast"], curve.flux_limit / 10.0, rtol=1e-15)


def test_an_output_that_is_a_file_is_refused_before_any_file(curve, tmp_path):
    (tmp_path / "limits").write_text("x")
    with pytest.raises(OSError, match=r"^cannot write .*limits: it is a file, not a folder; choose another output_dir$"):
        write_limits(tmp_path / "limits", classical=curve)
    assert [p.name for p in tmp_path.iterdir()] == ["limits"]


def test_a_failure_while_writing_leaves_no_folder(curve, tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("sodinn.pipeline.limits.save_figure", failing)
    with pytest.raises(KeyboardInterrupt):
        write_limits(tmp_path / "a" / "limits", classical=curve)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the report of sodinn limits

QUICK = dict(copies_per_flux=1, flux_ladder=(5.0, 50.0), classical_azimuths=1, classical_step_fwhm=2.0, oracle_azimuths=1,
             separations_lambda_d=(2.5,), psf_nd_transmission=0.01)


@pytest.fixture(scope="module")
def scaled_sequence(tiny_sequence):
    return ADISequence(tiny_sequence.cube, tiny_sequence.angles_deg, tiny_sequence.psf, tiny_sequence.fwhm_px, 0.0272)


def test_limits_report_writes_ecsv_figure_and_config(scaled_sequence, tmp_path):
    import tomllib

    from matplotlib.image import imread

    from sodinn.config import LimitConfig
    from sodinn.pipeline.limits import limits_report

    out = tmp_path / "limits"
    result = limits_report(scaled_sequence, LimitConfig(**QUICK), None, out, data={"cube": "cube.fits"}, n_jobs=1, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["cache", "config.toml", "limits.ecsv", "limits.png", "tpr.ecsv"]
    table = Table.read(out / "limits.ecsv", format="ascii.ecsv")
    assert str(table["sep_arcsec"].unit) == "arcsec" and str(table["delta_mag"].unit) == "mag"
    np.testing.assert_allclose(table["delta_mag"], result.table()["delta_mag"], rtol=1e-15)
    assert table.meta["psf_nd_transmission"] == 0.01 and table.meta["star_flux"] == pytest.approx(result.star_flux)
    image = imread(out / "limits.png")
    assert image.shape[0] >= 500 and image.shape[1] >= 700  # 7 x 5 in at 120 dpi
    rgb = image[..., :3]
    assert (rgb < 0.5).mean() > 0.005 and (rgb > 0.9).mean() > 0.5  # drawn, on a white page
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["limits"]["psf_nd_transmission"] == 0.01 and config["limits"]["separations_lambda_d"] == [2.5]
    assert config["data"] == {"cube": "cube.fits"} and config["limits"]["output"] == str(out.resolve())
    assert len(Table.read(out / "tpr.ecsv", format="ascii.ecsv")) == 2  # one separation x 2 flux levels


def test_limits_report_refuses_before_any_file(scaled_sequence, tmp_path):
    from sodinn.config import LimitConfig
    from sodinn.exceptions import SettingError
    from sodinn.pipeline.limits import limits_report

    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="it is a file, not a folder; choose another output_dir"):
        limits_report(scaled_sequence, LimitConfig(**QUICK), None, tmp_path / "file", n_jobs=1)
    no_scale = ADISequence(scaled_sequence.cube, scaled_sequence.angles_deg, scaled_sequence.psf, 4.0)
    with pytest.raises(SettingError, match="pixel scale"):
        limits_report(no_scale, LimitConfig(**QUICK), None, tmp_path / "out", n_jobs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
