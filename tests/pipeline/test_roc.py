"""The ROC report: roc.csv, roc.png, summary.txt, injections.ecsv, config.toml, provenance.json and the cache."""

from __future__ import annotations

import json
import tomllib

import pytest
from astropy.table import Table

from sodinn._version import __version__
from sodinn.adi.sequence import ADISequence
from sodinn.config import RocConfig
from sodinn.datasets import make_adi_sequence
from sodinn.learn.artifact import metadata_digest
from sodinn.pipeline.roc import roc_report, write_roc_report

from .conftest import SHIPPED_MODEL

CONFIG = RocConfig(bands_lambda_d=((1.5, 3.0),), copies_per_band=2, baselines=("annular-5",), flux_range=(2000.0, 2000.0),
                   snr_thresholds=(1.0, 5.0))
DATA = {"cube": "cube.fits", "fwhm_px": 4.0}
REPORT = ["roc.csv", "injections.ecsv", "summary.txt", "config.toml", "roc.png", "provenance.json"]


@pytest.fixture(scope="module")
def sequence():
    s = make_adi_sequence(n_frames=30, size_px=63, fwhm_px=4.0, seed=5)
    return ADISequence(s.cube, s.angles_deg, s.psf, s.fwhm_px, s.pixel_scale_arcsec,
                       provenance={"cube_file": "cube.fits", "cube_sha256": "abc", "nested": {"not": "kept"}})


@pytest.fixture(scope="module")
def report(sequence, tmp_path_factory):
    out = tmp_path_factory.mktemp("roc") / "report"
    return out, roc_report(sequence, CONFIG, None, out, data=DATA, n_jobs=1, progress=False)


def test_report_files_and_cache_are_written(report):
    out, result = report
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT, "cache"])
    assert (out / "roc.png").read_bytes().startswith(b"\x89PNG")
    # the cache is the folder of the maps, inside OUTPUT/cache: one map per copy and method
    assert result.cache_dir is not None and result.cache_dir.parent == out / "cache"
    maps = sorted(p.relative_to(result.cache_dir).as_posix() for p in result.cache_dir.rglob("*") if p.is_file())
    assert maps == ["annular-5/band0_copy0000.npy", "annular-5/band0_copy0001.npy"]


def test_tables_hold_the_rows_and_injections(report):
    out, result = report
    roc = Table.read(out / "roc.csv", format="ascii.csv")
    assert len(roc) == len(result.rows) == 2  # one method, one band, two thresholds
    assert list(roc["method"]) == ["annular-5", "annular-5"] and list(roc["threshold"]) == [1.0, 5.0]
    assert list(roc["tp"]) == [r["tp"] for r in result.rows]
    bright = [r for r in result.rows if r["threshold"] == 5.0][0]
    assert bright["n_injections"] == 2 and bright["tp"] == 2 and bright["tpr"] == 1.0  # 2000 counts: always found
    inj = Table.read(out / "injections.ecsv")
    assert len(inj) == len(result.injections) == 2
    assert list(inj["flux"]) == [2000.0, 2000.0] and list(inj["copy"]) == [0, 1]
    assert all(1.5 * 4.0 <= sep <= 3.0 * 4.0 for sep in inj["sep_px"])  # in the band (lambda/D = FWHM)
    summary = (out / "summary.txt").read_text()
    assert summary == result.summary + "\n" and "annular-5" in summary


def test_configuration_and_provenance_are_recorded(report, sequence):
    out, result = report
    settings = tomllib.loads((out / "config.toml").read_text())
    assert settings["data"] == DATA
    expected = {k: v for k, v in CONFIG.to_dict().items() if v is not None}  # TOML leaves out None (lambda_d_px)
    assert settings["roc"] == {**expected, "models": [], "output": str(out.resolve())}

    record = json.loads((out / "provenance.json").read_text())
    assert record["roc_config"] == CONFIG.to_dict()
    assert record["cache"] == str(result.cache_dir)
    assert record["models"] == {}
    assert record["fwhm_px"] == 4.0 and record["sodinn_version"] == __version__
    assert record["platform"]["cpu_count"] >= 1 and "numpy" in record["platform"]["libraries"]  # the machine it ran on
    assert record["data"] == {"cube_file": "cube.fits", "cube_sha256": "abc"}  # plain values only
    assert record["created_utc"].endswith("+00:00")


def test_write_roc_report_rewrites_the_same_report_elsewhere(report, sequence, tmp_path):
    out, result = report
    written = write_roc_report(result, sequence, CONFIG, tmp_path / "again")
    assert written == [tmp_path / "again" / name for name in REPORT]
    assert all(p.is_file() for p in written)
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(REPORT)  # no cache, no temporary files
    for name in ("roc.csv", "injections.ecsv", "summary.txt"):
        assert (tmp_path / "again" / name).read_text() == (out / name).read_text()
    assert "data" not in tomllib.loads((tmp_path / "again" / "config.toml").read_text())  # no [data] table given


def test_rerun_reuses_the_cached_maps(report, sequence):
    out, result = report
    maps = {p: p.stat().st_mtime_ns for p in result.cache_dir.rglob("*.npy")}
    again = roc_report(sequence, CONFIG, None, out, data=DATA, n_jobs=1, progress=False)
    assert again.cache_dir == result.cache_dir
    assert {p: p.stat().st_mtime_ns for p in again.cache_dir.rglob("*.npy")} == maps  # not recomputed
    assert json.dumps(again.rows) == json.dumps(result.rows)  # (NaN != NaN: compare the JSON text)


@pytest.mark.parametrize(("change", "message"), [
    ({"bands_lambda_d": ((6.0, 9.0),)}, r"band 6-9 lambda/D reaches 36\.0 px"),  # outside the 63 px frame
    ({"baselines": ("nope-5",)}, r"unknown baseline 'nope'"),
])
def test_bad_configuration_is_refused_before_any_file(sequence, tmp_path, change, message):
    out = tmp_path / "report"
    config = RocConfig(**{**CONFIG.__dict__, **change})
    with pytest.raises(ValueError, match=message):
        roc_report(sequence, config, None, out, n_jobs=1, progress=False)
    assert not out.exists()


@pytest.mark.slow
def test_model_digest_is_recorded(sequence, tmp_path):
    result = roc_report(sequence, CONFIG, {"sodinn": SHIPPED_MODEL}, tmp_path, n_jobs=1, progress=False)
    record = json.loads((tmp_path / "provenance.json").read_text())
    assert record["models"]["sodinn"]["model_json_sha256"] == metadata_digest(SHIPPED_MODEL)
    assert record["models"]["sodinn"]["path"] == str(result.models["sodinn"])
    settings = tomllib.loads((tmp_path / "config.toml").read_text())
    assert settings["roc"]["models"] == [f"sodinn={result.models['sodinn']}"]
    assert {r["method"] for r in Table.read(tmp_path / "roc.csv", format="ascii.csv")} >= {"sodinn", "annular-5"}


def test_an_output_that_is_a_file_is_refused_before_any_copy(sequence, tmp_path, monkeypatch):
    monkeypatch.setattr("sodinn.pipeline.roc.run_roc", lambda *a, **k: pytest.fail("the harness ran"))
    (tmp_path / "out").write_text("x")
    with pytest.raises(OSError, match=r"^cannot write .*out: it is a file, not a folder; choose another output_dir$"):
        roc_report(sequence, CONFIG, None, tmp_path / "out", progress=False)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failure_leaves_no_folder_unless_the_cache_holds_finished_copies(sequence, tmp_path, monkeypatch, error):
    def failing(seq, config, models, *, cache_dir, **kwargs):
        cache_dir.mkdir(parents=True)  # made, but no copy finished
        raise error

    monkeypatch.setattr("sodinn.pipeline.roc.run_roc", failing)
    with pytest.raises(type(error)):
        roc_report(sequence, CONFIG, None, tmp_path / "a" / "roc", progress=False)
    assert list(tmp_path.iterdir()) == []

    def after_one_copy(seq, config, models, *, cache_dir, **kwargs):
        (cache_dir / "key").mkdir(parents=True)
        (cache_dir / "key" / "copy-0.npy").write_bytes(b"map")
        raise error

    monkeypatch.setattr("sodinn.pipeline.roc.run_roc", after_one_copy)
    with pytest.raises(type(error)):
        roc_report(sequence, CONFIG, None, tmp_path / "roc", progress=False)
    assert (tmp_path / "roc" / "cache" / "key" / "copy-0.npy").is_file()  # a rerun resumes from it


def test_roc_figure_opens_with_its_legend_outside_the_panels(report, sequence, tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imread

    import sodinn.pipeline.roc as roc_module

    _, result = report
    drawn = []
    original = roc_module.save_figure
    monkeypatch.setattr(roc_module, "save_figure", lambda fig, path, **kw: (drawn.append(fig), original(fig, path, **kw))[1])
    write_roc_report(result, sequence, CONFIG, tmp_path)
    image = imread(tmp_path / "roc.png")
    assert image.shape[0] == 540 and image.shape[1] >= 840 and image[..., :3].std() > 0.05
    fig = drawn[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "mean false positives per frame"]
    legend = panels[-1].get_legend()
    assert legend is not None and legend.get_window_extent(renderer).x0 > panels[-1].get_window_extent(renderer).x1
    assert legend.get_window_extent(renderer).x1 <= fig.bbox.x1  # inside the picture, not cropped
