import json

import h5py
import numpy as np
import pytest

import sodinn.mlar.store as store
from sodinn.config import SampleConfig
from sodinn.mlar.samples import make_samples, sample_annuli
from sodinn.mlar.store import SampleFile, generate_sample_file, write_samples

from ..conftest import small_flux_ranges, small_samples_config


@pytest.fixture(scope="module")
def synthetic(small_sequence):
    return small_sequence


CFG = small_samples_config()
_ranges = small_flux_ranges


def _arrays(path):
    with h5py.File(path) as h:
        keys = ("samples", "labels", "x", "y", "flux", "group", "annulus", "augmented", "snr_curves")
        return {k: h[k][()] for k in keys}, dict(h.attrs)


def test_roundtrip_and_streaming_reader(synthetic, tmp_path):
    data = make_samples(synthetic, CFG, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    path = write_samples(data, tmp_path / "s.h5")
    with SampleFile(path) as f:
        assert len(f) == len(data) and f.sample_shape == (6, 9, 9)
        assert f.config == CFG and f.provenance["config_sha256"] == CFG.digest()
        assert f.provenance["platform"]["machine"] and "numba" in f.provenance["platform"]["libraries"]  # made on
        np.testing.assert_array_equal(f.read(np.arange(len(f))), data.samples)
        np.testing.assert_array_equal(f.labels, data.labels)
        np.testing.assert_array_equal(f.snr_curves, data.snr_curves)
        assert f.snr_curves.shape == (len(f), 6) and f.snr_curves.dtype == np.float32
        assert f._h5.attrs["snr_curves"] == "mawet-snr-per-rank/2"
        picked = f.read([5, 2, 2])
        np.testing.assert_array_equal(picked, data.samples[[5, 2, 2]])
        batches = list(f.iter_batches(7, shuffle=True, seed=1))
        assert sum(len(b[1]) for b in batches) == len(f)
        assert all(0.0 <= b[0].min() and b[0].max() <= 1.0 for b in batches)
        assert f._h5["samples"].chunks[0] <= 256 and f._h5["samples"].compression == "gzip"
    assert not list(tmp_path.glob(".*tmp"))


def test_generate_resume_is_identical(synthetic, tmp_path, monkeypatch):
    full = generate_sample_file(synthetic, CFG, tmp_path / "full.h5", flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    target = tmp_path / "resumed.h5"
    saved = []
    original = store._save_part

    def interrupted(path, part):
        if len(saved) == 1:
            raise KeyboardInterrupt  # the user stops the run after one annulus
        saved.append(path)
        original(path, part)

    monkeypatch.setattr(store, "_save_part", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_sample_file(synthetic, CFG, target, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    assert not target.exists()  # no half-file that looks complete
    assert len(list((tmp_path / "resumed.h5.parts").glob("annulus_*.npz"))) == 1
    monkeypatch.setattr(store, "_save_part", original)
    generate_sample_file(synthetic, CFG, target, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    a, attrs_a = _arrays(full)
    b, attrs_b = _arrays(target)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert attrs_a == attrs_b
    assert not (tmp_path / "resumed.h5.parts").exists()


def test_memory_budget_is_checked_first_and_resume_ignores_it(synthetic, tmp_path, monkeypatch):
    from sodinn.mlar.operator import AnnulusGeometry
    from sodinn.mlar.samples import sample_psf

    annuli, psf_px = sample_annuli(synthetic, CFG), sample_psf(synthetic, CFG).shape[0]
    least = max(AnnulusGeometry(synthetic.frame_size, r0, r1, CFG.patch_px).plan(CFG, synthetic.n_frames, psf_px).minimum_bytes
                for r0, r1 in zip(annuli.r_in_px, annuli.r_out_px))
    small = SampleConfig(**{**CFG.to_dict(), "memory_budget_gib": 0.5 * least / 2**30})
    with pytest.raises(ValueError, match="memory budget of .* GiB is too small.*set memory_budget_gib="):
        generate_sample_file(synthetic, small, tmp_path / "small.h5", progress=False)  # no S/N oracle run first
    assert not (tmp_path / "small.h5.parts").exists()
    full = generate_sample_file(synthetic, CFG, tmp_path / "full.h5", flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    target = tmp_path / "resumed.h5"
    original = store._save_part
    monkeypatch.setattr(store, "_save_part", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        generate_sample_file(synthetic, CFG, target, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    monkeypatch.setattr(store, "_save_part", original)
    tight = SampleConfig(**{**CFG.to_dict(), "memory_budget_gib": 1.05 * least / 2**30})
    generate_sample_file(synthetic, tight, target, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)  # resumes
    a, b = _arrays(full)[0], _arrays(target)[0]
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_resume_refuses_other_configuration(synthetic, tmp_path, monkeypatch):
    target = tmp_path / "x.h5"
    monkeypatch.setattr(store, "_save_part", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        generate_sample_file(synthetic, CFG, target, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    other = SampleConfig(**{**CFG.to_dict(), "seed": 4, "snr_range": (1.0, 3.0)})
    with pytest.raises(ValueError, match="another sequence or configuration"):
        generate_sample_file(synthetic, other, target, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)


def test_generate_with_oracle_records_it(synthetic, tmp_path):
    path = generate_sample_file(synthetic, CFG, tmp_path / "o.h5", n_jobs=1, progress=False)
    with SampleFile(path) as f:
        ranges = f.flux_range
        assert (ranges[:, 0] > 0).all() and (ranges[:, 1] > ranges[:, 0]).all()
        pos = f.labels == 1
        lo, hi = ranges[f.annulus[pos], 0], ranges[f.annulus[pos], 1]
        assert np.all((f.flux[pos] >= lo) & (f.flux[pos] <= hi))
        assert len(f.oracle["snrs"]) == len(ranges)
    with h5py.File(path) as h:
        assert json.loads(h.attrs["config"])["seed"] == 3


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        SampleFile(tmp_path / "none.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nope")
    with pytest.raises(ValueError, match="cannot open"):
        SampleFile(bad)
    with h5py.File(tmp_path / "other.h5", "w") as h:
        h.attrs["format"] = "something"
    with pytest.raises(ValueError, match="not a sodinn sample file"):
        SampleFile(tmp_path / "other.h5")


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_oracle_leaves_no_parts_folder(synthetic, tmp_path, monkeypatch, error):
    """Before the S/N oracle finishes there is nothing to resume from: no empty .parts/, no folder made."""

    def interrupted(*args, **kwargs):
        raise error

    monkeypatch.setattr(store, "fit_flux_ranges", interrupted)
    target = tmp_path / "new" / "s.h5"
    with pytest.raises(error):
        generate_sample_file(synthetic, CFG, target, n_jobs=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_interruption_after_the_oracle_keeps_its_table_to_resume(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_save_part", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        generate_sample_file(synthetic, CFG, tmp_path / "s.h5", flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    parts = tmp_path / "s.h5.parts"
    assert [p.name for p in parts.iterdir()] == ["state.json"]  # the resume state, not an empty folder
    assert json.loads((parts / "state.json").read_text())["oracle"]["given"] is True


def test_an_output_that_cannot_be_written_is_refused_before_the_oracle(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "fit_flux_ranges", lambda *a, **k: pytest.fail("the oracle ran"))
    with pytest.raises(OSError, match=r"^cannot write .*: it is a folder, not a file; choose another path$"):
        generate_sample_file(synthetic, CFG, tmp_path, n_jobs=1, progress=False)
    (tmp_path / "f").write_text("x")
    with pytest.raises(OSError, match=r"f is a file, not a folder; choose another path$"):
        generate_sample_file(synthetic, CFG, tmp_path / "f" / "s.h5", n_jobs=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_parts_made_without_snr_curves_are_not_resumed(synthetic, tmp_path, monkeypatch):
    """The S/N curves' rule is part of the resume identity: parts of an older sodinn (no curves) are refused."""
    target = tmp_path / "x.h5"
    monkeypatch.setattr(store, "_save_part", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        generate_sample_file(synthetic, CFG, target, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    state_file = tmp_path / "x.h5.parts" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["identity"]["snr_curves"] == "mawet-snr-per-rank/2"
    state["identity"]["snr_curves"] = "mawet-snr-per-rank/1"  # before known sources left the noise apertures
    state_file.write_text(json.dumps(state))
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"S/N curves were made as 'mawet-snr-per-rank/1' .* as 'mawet-snr-per-rank/2'; "
                                         r"pass resume=False \(--no-resume\) to remake"):
        generate_sample_file(synthetic, CFG, target, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    del state["identity"]["snr_curves"]  # as written before S/N curves existed
    state_file.write_text(json.dumps(state))
    with pytest.raises(ValueError, match=r"interrupted run without S/N curves .*--no-resume"):
        generate_sample_file(synthetic, CFG, target, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)


def test_a_file_without_snr_curves_reads_and_names_the_fix(synthetic, tmp_path):
    from sodinn.exceptions import SettingError

    data = make_samples(synthetic, CFG, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    path = write_samples(data, tmp_path / "old.h5")
    with h5py.File(path, "a") as h:
        del h["snr_curves"]
        del h.attrs["snr_curves"]
    with SampleFile(path) as f:
        assert f.snr_curves is None
        np.testing.assert_array_equal(f.read([0, 1]), data.samples[:2])
        with pytest.raises(SettingError, match=r"model 'sodinn-snr' needs the S/N curves.*re-run `sodinn samples`"):
            f.require_snr_curves(model="sodinn-snr")


def test_a_file_of_curves_before_issue_14_is_refused_naming_the_fix(synthetic, tmp_path):
    from sodinn.exceptions import SettingError

    data = make_samples(synthetic, CFG, flux_ranges=_ranges(synthetic), n_jobs=1, progress=False)
    path = write_samples(data, tmp_path / "old.h5")
    with SampleFile(path) as f:
        assert f.snr_curves_rule == "mawet-snr-per-rank/2"
        np.testing.assert_array_equal(f.require_snr_curves(), data.snr_curves)
    with h5py.File(path, "a") as h:
        h.attrs["snr_curves"] = "mawet-snr-per-rank/1"  # as written before known sources left the noise apertures
    with SampleFile(path) as f:
        assert f.snr_curves_rule == "mawet-snr-per-rank/1" and f.snr_curves is not None
        with pytest.raises(SettingError, match=r"model 'sodinn-snr' needs the S/N curves .* made as 'mawet-snr-per-rank/2'"
                                               r".*holds curves made as 'mawet-snr-per-rank/1'.*re-run `sodinn samples`"):
            f.require_snr_curves(model="sodinn-snr")
