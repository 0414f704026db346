"""Injected copies: the methods' checks and cache tags, the map cache, one copy's maps and the cached runner."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import sodinn.evaluate.copies as copies
from sodinn.adi.baselines import median_adi
from sodinn.adi.sequence import ADISequence
from sodinn.adi.snr import snr_map
from sodinn.datasets import make_adi_sequence
from sodinn.evaluate.copies import (
    Injection,
    MapCache,
    cache_key,
    check_methods,
    copy_maps,
    free_position,
    method_names,
    method_tags,
    run_copies,
)
from sodinn.exceptions import PSFWarning
from sodinn.learn.artifact import metadata_digest

from ..conftest import offset_psf

MODEL = Path(__file__).resolve().parents[2] / "models" / "synthetic-sodinn-k10-p9"


@pytest.fixture(scope="module")
def sequence():
    data = make_adi_sequence(n_frames=20, size_px=49, fwhm_px=4.0, seed=7)
    return ADISequence(cube=data.cube, angles_deg=data.angles_deg, psf=data.psf, fwhm_px=4.0)


def _injection(band=0, copy=0, sep=12.0, theta=30.0, flux=0.0, center=24.0):
    x = center + sep * math.cos(math.radians(theta))
    y = center + sep * math.sin(math.radians(theta))
    return Injection(band=band, copy=copy, sep_px=sep, theta_deg=theta, flux=flux, x=x, y=y)


# ---------------------------------------------------------------- methods


def test_check_methods_returns_the_model_folders_as_strings():
    assert check_methods(None, ["median", "pca", "annular-5"]) == {}
    assert check_methods({"net": MODEL}, ["median"]) == {"net": str(MODEL)}


def test_check_methods_refuses_an_unknown_baseline():
    with pytest.raises(ValueError, match=r"unknown baseline 'loci'; the baselines are median, pca, annular"):
        check_methods({}, ["median", "loci"])
    with pytest.raises(ValueError, match="needs a number of components"):
        check_methods({}, ["annular"])


@pytest.mark.parametrize("name", ["annular-5", "median", "pca", "annular-12", "annular", "median-3"])
def test_check_methods_refuses_a_model_named_like_a_baseline(name):
    # a baseline name clashes even when that baseline is not part of the experiment
    with pytest.raises(ValueError, match=rf"^model name '{name}' clashes with a baseline; choose another name$"):
        check_methods({name: MODEL}, ["annular-5"])


def test_check_methods_refuses_a_folder_without_model_json(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^model 'net': .* is not a model folder \(no model.json in it\)"):
        check_methods({"net": tmp_path}, ["median"])
    with pytest.raises(FileNotFoundError, match=r"^model 'gone': model folder not found"):
        check_methods({"gone": tmp_path / "missing"}, [])


def test_method_names_and_tags():
    assert method_names({"net": MODEL}, ["median", "pca"]) == ["net", "median", "pca"]
    assert method_tags({}, ["median", "pca", "annular-10", "pca-3"]) == {
        "median": "median", "pca": "pca-cevr0.9", "annular-10": "annular-10", "pca-3": "pca-3"}
    tags = method_tags({"net": str(MODEL)}, ["median"])
    digest = metadata_digest(MODEL)
    assert tags["net"] == "model-logit-" + digest[:12] and len(tags["net"]) == len("model-logit-") + 12
    assert all(c in "0123456789abcdef" for c in tags["net"][len("model-logit-"):])


def test_known_sources_change_the_tag_of_a_model_that_takes_snr_curves_only(tmp_path):
    import json
    import shutil

    from sodinn.mlar.features import SNR_CURVES

    snr = tmp_path / "snr"
    snr.mkdir()
    shutil.copy(Path(MODEL) / "model.json", snr / "model.json")
    meta = json.loads((snr / "model.json").read_text())
    (snr / "model.json").write_text(json.dumps({**meta, "snr_curves": SNR_CURVES}))
    models = {"net": str(MODEL), "snr": str(snr)}
    plain = method_tags(models, ["median"])
    assert method_tags(models, ["median"], known_sources_xy=()) == plain
    one = method_tags(models, ["median"], known_sources_xy=[(30.0, 12.0)])
    other = method_tags(models, ["median"], known_sources_xy=[(30.0, 13.0)])
    assert one["net"] == plain["net"] and one["median"] == "median"  # the patch-only model's map does not change
    assert len({plain["snr"], one["snr"], other["snr"]}) == 3 and one["snr"].startswith(plain["snr"] + "-known")


# ---------------------------------------------------------------- the cache


def test_map_cache_write_then_read(tmp_path):
    cache = MapCache(tmp_path, {"median": "median", "annular-5": "annular-5"})
    inj = _injection(band=2, copy=7)
    frame = np.arange(25, dtype=np.float32).reshape(5, 5)
    assert cache.read(inj, "median") is None  # nothing cached yet
    cache.write(inj, "median", frame)
    assert cache.path(inj, "median") == tmp_path / "median" / "band2_copy0007.npy"
    back = cache.read(inj, "median")
    assert back is not None and back.dtype == np.float32
    np.testing.assert_array_equal(back, frame)
    assert cache.read(inj, "annular-5") is None and cache.read(_injection(band=2, copy=8), "median") is None
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["band2_copy0007.npy", "median"]  # no temporary left


def test_map_cache_ignores_an_unreadable_file(tmp_path, caplog):
    cache = MapCache(tmp_path, {"median": "median"})
    inj = _injection()
    path = cache.path(inj, "median")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a numpy file")
    with caplog.at_level(logging.WARNING, logger="sodinn.evaluate.copies"):
        assert cache.read(inj, "median") is None
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert caplog.records[0].getMessage() == f"ignoring an unreadable cache file {path} (it will be remade)"


def test_map_cache_without_a_folder_caches_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = MapCache(None, {"median": "median"})
    inj = _injection()
    assert cache.folder is None and cache.path(inj, "median") is None
    cache.write(inj, "median", np.ones((3, 3)))
    assert cache.read(inj, "median") is None
    assert list(tmp_path.iterdir()) == []


def test_cache_key_follows_the_data_and_the_injections(sequence):
    injections = [_injection(copy=0, flux=100.0), _injection(copy=1, theta=120.0, flux=200.0)]
    key = cache_key(sequence, injections)
    assert len(key) == 16 and key == cache_key(sequence, list(injections))
    moved = [injections[0], _injection(copy=1, theta=121.0, flux=200.0)]
    brighter = [injections[0], _injection(copy=1, theta=120.0, flux=201.0)]
    assert len({key, cache_key(sequence, moved), cache_key(sequence, brighter), cache_key(sequence, injections[:1])}) == 4
    other = ADISequence(cube=sequence.cube + 1.0, angles_deg=sequence.angles_deg, psf=sequence.psf, fwhm_px=4.0)
    assert cache_key(other, injections) != key


# ---------------------------------------------------------------- one copy


def test_copy_maps_without_companion_is_the_baseline_snr_map(sequence):
    maps = copy_maps(sequence, _injection(flux=0.0), sequence.psf_normalized, (8.0, 16.0), models={}, baselines=["median"])
    assert list(maps) == ["median"]
    expected = snr_map(median_adi(sequence.cube, sequence.angles_deg), sequence.fwhm_px).astype(np.float32)
    assert maps["median"].dtype == np.float32
    np.testing.assert_array_equal(maps["median"], expected)


def test_copy_maps_of_a_bright_companion_peak_at_it(sequence):
    inj = _injection(sep=12.0, theta=30.0, flux=3000.0)
    maps = copy_maps(sequence, inj, sequence.psf_normalized, (8.0, 16.0), models={}, baselines=["median", "annular-5"])
    assert set(maps) == {"median", "annular-5"}
    for name, smap in maps.items():
        assert smap.dtype == np.float32 and smap.shape == (49, 49)
        y, x = np.unravel_index(np.nanargmax(smap), smap.shape)
        assert np.hypot(x - inj.x, y - inj.y) < sequence.fwhm_px, name  # within one FWHM of the companion
        assert smap[y, x] > 10.0, name
    only = copy_maps(sequence, inj, sequence.psf_normalized, (8.0, 16.0), models={}, baselines=["median", "annular-5"],
                     only=["annular-5"])
    assert list(only) == ["annular-5"]
    np.testing.assert_array_equal(only["annular-5"], maps["annular-5"])


# ---------------------------------------------------------------- the runner


def test_run_copies_passes_the_known_sources_to_every_copy(sequence, monkeypatch):
    seen = []

    def recording(seq, injection, psf, radii_px, *, models, baselines, only=None, known_sources_xy=()):
        seen.append(known_sources_xy)
        return {name: np.zeros((4, 4), dtype=np.float32) for name in baselines}

    monkeypatch.setattr(copies, "copy_maps", recording)
    injections = [_injection(copy=c, theta=40.0 * c, flux=100.0) for c in range(2)]
    run_copies(sequence, injections, sequence.psf_normalized, [(8.0, 16.0)] * 2, models={}, baselines=["median"], n_jobs=1,
               progress=False, known_sources_xy=[(30, 12)])
    assert seen == [((30.0, 12.0),)] * 2


def test_run_copies_reuses_the_cache_and_computes_only_what_is_missing(sequence, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")  # set by the jobs; restored after the test
    calls = []

    def counting(seq, injection, psf, radii_px, *, models, baselines, only=None, known_sources_xy=()):
        calls.append((injection.copy, tuple(only)))
        return {name: np.full((4, 4), 10 * injection.copy + i, dtype=np.float32) for i, name in enumerate(baselines)
                if name in only}

    monkeypatch.setattr(copies, "copy_maps", counting)
    injections = [_injection(copy=c, theta=40.0 * c, flux=100.0) for c in range(3)]
    radii = [(8.0, 16.0)] * 3
    kw = dict(models={}, cache_dir=tmp_path, n_jobs=1, progress=False)
    first = run_copies(sequence, injections, sequence.psf_normalized, radii, baselines=["median", "pca"], **kw)
    assert sorted(calls) == [(0, ("median", "pca")), (1, ("median", "pca")), (2, ("median", "pca"))]
    assert [sorted(m) for m in first] == [["median", "pca"]] * 3
    assert [float(m["pca"][0, 0]) for m in first] == [1.0, 11.0, 21.0]
    folder = tmp_path / cache_key(sequence, injections)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.npy")) == [
        f"{tag}/band0_copy{c:04d}.npy" for tag in ("median", "pca-cevr0.9") for c in range(3)]

    calls.clear()
    again = run_copies(sequence, injections, sequence.psf_normalized, radii, baselines=["median", "pca"], **kw)
    assert calls == []  # every map came from the cache
    for a, b in zip(first, again):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])

    (folder / "pca-cevr0.9" / "band0_copy0001.npy").unlink()  # as if interrupted before this map
    more = run_copies(sequence, injections, sequence.psf_normalized, radii, baselines=["median", "pca", "annular-5"], **kw)
    assert sorted(calls) == [(0, ("annular-5",)), (1, ("pca", "annular-5")), (2, ("annular-5",))]
    assert [sorted(m) for m in more] == [["annular-5", "median", "pca"]] * 3
    assert float(more[1]["pca"][0, 0]) == 11.0 and float(more[2]["annular-5"][0, 0]) == 22.0

    calls.clear()
    run_copies(sequence, injections, sequence.psf_normalized, radii, baselines=["median"], resume=False, **kw)
    assert sorted(calls) == [(0, ("median",)), (1, ("median",)), (2, ("median",))]  # resume=False recomputes

    calls.clear()
    fresh = run_copies(sequence, injections[:1], sequence.psf_normalized, radii[:1], baselines=["median"],
                       models={}, n_jobs=1, progress=False)
    assert calls == [(0, ("median",))] and list(fresh[0]) == ["median"]  # no cache_dir: nothing reused or written


# ---------------------------------------------------------------- positions


def test_free_position_avoids_the_known_sources():
    draws = iter([(10.0, 0.0), (10.0, 90.0), (10.0, 180.0)])
    sources = np.array([[30.0, 20.0], [20.5, 30.0]])  # near the first two draws around (20, 20)
    sep, theta, x, y = free_position(lambda: next(draws), (20.0, 20.0), sources, 3.0, "a copy")
    assert (sep, theta) == (10.0, 180.0)
    assert (x, y) == pytest.approx((10.0, 20.0))
    assert free_position(lambda: (5.0, 90.0), (20.0, 20.0), np.empty((0, 2)), 3.0, "x") == pytest.approx(
        (5.0, 90.0, 20.0, 25.0))


def test_free_position_gives_up_when_every_draw_is_near_a_source():
    count = []

    def draw():
        count.append(1)
        return 8.0, 45.0

    star = (24.0, 24.0)
    source = np.array([[24.0 + 8 / math.sqrt(2), 24.0 + 8 / math.sqrt(2)]])
    with pytest.raises(ValueError, match=r"^band 1 injection is farther than 4\.0 px from the known sources$"):
        free_position(draw, star, source, 4.0, "band 1 injection")
    assert len(count) == 1000


def test_run_copies_refuses_a_model_the_data_cannot_feed_before_any_copy(tmp_path):
    """A 6-frame sequence cannot give the shipped model's 10 ranks: refused from model.json, no cache folder."""
    data = make_adi_sequence(n_frames=6, size_px=49, fwhm_px=4.0, seed=7)
    short = ADISequence(cube=data.cube, angles_deg=data.angles_deg, psf=data.psf, fwhm_px=4.0)
    with pytest.raises(ValueError, match=r"^model net: the model uses 10 PCA ranks, but these data have 6 frames"):
        run_copies(short, [_injection()], data.psf, [(10.0, 14.0)], models={"net": str(MODEL)}, baselines=[],
                   cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_run_copies_refuses_a_cache_folder_that_is_a_file(sequence, tmp_path):
    (tmp_path / "cache").write_text("x")
    with pytest.raises(OSError, match=r"^cannot write .*cache: it is a file, not a folder; choose another cache_dir$"):
        run_copies(sequence, [_injection()], sequence.psf, [(10.0, 14.0)], models={}, baselines=["median"],
                   cache_dir=tmp_path / "cache", n_jobs=1, progress=False)


def test_copies_inject_the_centred_psf_and_say_so_once(sequence):
    """A PSF given 1 px off-centre (issue 13, C): the copies' maps are those of the centred PSF, with one warning."""
    inj = [_injection(copy=c, sep=12.0, theta=30.0 + 90 * c, flux=3000.0) for c in range(2)]
    kw = dict(models={}, baselines=["median"], n_jobs=1, progress=False)
    ref = run_copies(sequence, inj, offset_psf(21), [(8.0, 16.0)] * 2, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = run_copies(sequence, inj, offset_psf(21, 1.0, 0.0), [(8.0, 16.0)] * 2, **kw)
    assert [w.category for w in caught] == [PSFWarning]  # once for all the copies
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a["median"], b["median"], rtol=1e-5, atol=1e-5)
    with pytest.warns(PSFWarning, match="recentred"):
        one = copy_maps(sequence, inj[0], offset_psf(21, 1.0, 0.0), (8.0, 16.0), models={}, baselines=["median"])
    np.testing.assert_allclose(one["median"], ref[0]["median"], rtol=1e-5, atol=1e-5)
