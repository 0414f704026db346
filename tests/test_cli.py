import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from sodinn.cli import main


def test_help_and_version(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out
    for cmd in ("demo", "info", "reduce"):
        with pytest.raises(SystemExit) as exit_info:
            main([cmd, "--help"])
        assert exit_info.value.code == 0
        assert "usage: sodinn " + cmd in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0


def test_info_describes_naco(naco_paths, capsys):
    assert main(["info", str(naco_paths["angles"]), str(naco_paths["psf"])]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["kind"] == "angles" and lines[0]["field_rotation_deg"] == pytest.approx(81.37, abs=0.01)
    assert 4.6 < lines[1]["fwhm_px"] < 4.9


def test_reduce_naco_finds_beta_pic_b(naco_paths, tmp_path, capsys):
    config = tmp_path / "naco.toml"
    config.write_text(
        "[data]\n"
        f'cube = "{naco_paths["cube"]}"\nangles = "{naco_paths["angles"]}"\npsf = "{naco_paths["psf"]}"\n'
        "pixel_scale_arcsec = 0.0272\n[reduce]\nmethod = \"annular\"\nncomp = 10\n"
    )
    out = tmp_path / "out"
    assert main(["reduce", "--config", str(config), "--output", str(out), "--quiet"]) == 0
    assert "annular: S/N map peak" in capsys.readouterr().out
    smap = fits.getdata(out / "annular_snrmap.fits")
    py, px = np.unravel_index(np.argmax(smap), smap.shape)
    assert np.hypot(px - 62, py - 63) < 2.5  # beta Pic b
    header = fits.getheader(out / "annular_frame.fits")
    assert header["SODINN FUNCTION"] == "pca_annular" and len(header["SODINN CUBE_SHA256"]) == 64
    assert (out / "annular_snrmap.png").stat().st_size > 10_000
    assert "ncomp = 10" in (out / "config.toml").read_text()


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["reduce", "--cube", str(tmp_path / "missing.fits"), "--angles", "a", "--psf", "p"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sodinn reduce: error: FITS file not found") and "\n" not in err
    assert main(["reduce", "--cube", "c.fits"]) == 2
    assert "missing input(s): angles, psf" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    assert main(["reduce", "--config", str(bad)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[training]\nepochs = 3\n")
    assert main(["reduce", "--config", str(unknown)]) == 2
    assert "unknown section(s) training" in capsys.readouterr().err


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sodinn.cli", "info", str(tmp_path / "nope.fits")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"sodinn info: error: FITS file not found: {tmp_path / 'nope.fits'}; check the path"
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "S/N map peak" in out
    for name in ("annular_frame.fits", "annular_snrmap.fits", "annular_snrmap.png", "pca_snrmap.fits", "data/cube.fits",
                 "samples.h5", "model/model.keras", "predict/probability_map.fits", "predict/candidates.ecsv"):
        assert (tmp_path / name).is_file(), name
    assert out.count("found as candidate") == 2  # SODINN finds both injected companions


def test_demo_without_training(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--quiet", "--no-train"]) == 0
    assert "SODINN" not in capsys.readouterr().out
    assert not (tmp_path / "samples.h5").exists()


def test_samples_command(naco_paths, tmp_path, capsys):
    from sodinn.store import SampleFile

    out = tmp_path / "s.h5"
    args = ["samples", "--cube", str(naco_paths["cube"]), "--angles", str(naco_paths["angles"]), "--psf",
            str(naco_paths["psf"]), "--per-annulus", "8", "--ranks", "10", "--mask", "62", "63", "-j", "1",
            "--output", str(out), "--quiet"]
    assert main(args) == 0
    assert "samples (" in capsys.readouterr().out
    with SampleFile(out) as f:
        assert f.sample_shape == (10, 11, 11) and f.config.known_sources_xy == ((62.0, 63.0),)
        assert int(f.labels.sum()) * 2 == len(f)
    assert "n_ranks = 10" in out.with_suffix(".toml").read_text()
    assert main(args[:-3] + ["--patch", "8", "--output", str(out)]) == 2
    assert "patch_px must be odd" in capsys.readouterr().err


def test_flux_oracle_plot(naco_paths, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from sodinn.plotting import plot_flux_oracle

    oracle = {"fluxes": [[1, 2, 4]], "snrs": [[[0.5], [1.5], [3.5]]], "snr_curve": [[0.5, 1.5, 3.5]],
              "radii_px": [10.0], "flux_range": [[1.5, 3.2]]}
    ax = plot_flux_oracle(oracle)
    assert ax.get_xscale() == "log" and len(ax.lines) >= 3


def test_train_command_with_sodirf(tmp_path, capsys):
    from sodinn.config import SampleConfig
    from sodinn.datasets import make_adi_sequence
    from sodinn.sequence import ADISequence
    from sodinn.store import generate_sample_file

    data = make_adi_sequence(n_frames=20, size_px=49, fwhm_px=4.0, seed=2)
    seq = ADISequence(data.cube, data.angles_deg, data.psf, data.fwhm_px)
    path = generate_sample_file(seq, SampleConfig(patch_px=9, n_ranks=6, samples_per_annulus=40, oracle_azimuths=1),
                                tmp_path / "s.h5", n_jobs=1, progress=False)
    assert main(["train", str(path), "--model", "sodirf", "--output", str(tmp_path / "m"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sodirf: held-out accuracy") and "annulus 0" in out
    assert (tmp_path / "m" / "model.json").is_file() and "model = \"sodirf\"" in (tmp_path / "m" / "config.toml").read_text()
    assert main(["train", str(tmp_path / "none.h5")]) == 2
    assert capsys.readouterr().err.strip().endswith("make one with 'sodinn samples'")
    assert main(["train", str(path), "--model", "lstm"]) == 2
    assert "model must be one of" in capsys.readouterr().err


def test_predict_command_with_the_shipped_model(tmp_path, capsys):
    from pathlib import Path

    from sodinn.datasets import make_adi_sequence
    from sodinn.io import write_fits

    data = make_adi_sequence(n_frames=40, size_px=63, fwhm_px=4.0, field_rotation_deg=60.0,
                             companions=[(12.0, 50.0, 1500.0)], seed=0)
    for name, arr in (("cube", data.cube), ("angles", data.angles_deg), ("psf", data.psf)):
        write_fits(tmp_path / f"{name}.fits", arr)
    model = Path(__file__).resolve().parents[1] / "models" / "synthetic-sodinn-k10-p9"
    out = tmp_path / "pred"
    args = ["predict", str(model), "--cube", str(tmp_path / "cube.fits"), "--angles", str(tmp_path / "angles.fits"),
            "--psf", str(tmp_path / "psf.fits"), "--fwhm", "4", "--pixel-scale", "0.0272", "-o", str(out), "--quiet"]
    assert main(args) == 0
    assert "candidate(s) with P >= 0.9" in capsys.readouterr().out
    from astropy.table import Table

    table = Table.read(out / "candidates.ecsv")
    companion = data.companions[0]
    assert np.hypot(table["x"] - companion.x_px, table["y"] - companion.y_px).min() < 2
    prob = fits.getdata(out / "probability_map.fits")
    assert prob.shape == (63, 63) and fits.getheader(out / "probability_map.fits")["SODINN FUNCTION"] == "probability_map"
    assert set(np.unique(fits.getdata(out / "detection_map.fits"))) <= {0, 1}
    assert (out / "detection.png").stat().st_size > 10_000
    assert main(["predict", str(tmp_path), "--cube", "c"]) == 2
    assert "no model.json" in capsys.readouterr().err
