"""The products of sample generation: the HDF5 sample file and its settings beside it."""

from __future__ import annotations

import tomllib

import h5py
import pytest

from sodinn.config import SampleConfig
from sodinn.mlar.store import SampleFile
from sodinn.pipeline.samples import write_sample_file

from .conftest import TINY_DATA, TINY_SAMPLES


def test_sample_file_and_its_settings_are_written(tiny_samples):
    assert tiny_samples.name == "tiny.h5" and tiny_samples.is_file()
    folder = tiny_samples.parent
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.h5", "tiny.toml"]  # the .parts folder is gone
    with SampleFile(tiny_samples) as f:
        assert len(f) == 3 * 2 * 6  # 3 annuli x 2 classes x samples_per_annulus
        assert int(f.labels.sum()) == 18
        assert tuple(f.sample_shape) == (4, 9, 9)
        assert f.config == SampleConfig(**TINY_SAMPLES)
    with h5py.File(tiny_samples) as h:
        assert h["samples"].shape == (36, 4, 9, 9)

    settings = tomllib.loads((folder / "tiny.toml").read_text())
    assert set(settings) == {"data", "samples"}
    assert settings["data"] == TINY_DATA
    expected = {k: v for k, v in SampleConfig(**TINY_SAMPLES).to_dict().items() if v is not None}  # TOML has no null
    assert settings["samples"] == {**expected, "output": str(tiny_samples)}
    assert settings["samples"]["samples_per_annulus"] == 6 and settings["samples"]["n_ranks"] == 4


def test_settings_without_a_data_table(tiny_sequence, tmp_path):
    config = SampleConfig(**{**TINY_SAMPLES, "seed": 3})
    out = write_sample_file(tiny_sequence, config, tmp_path / "s.h5", n_jobs=1, progress=False)
    settings = tomllib.loads((tmp_path / "s.toml").read_text())
    assert out == tmp_path / "s.h5"
    assert settings["data"] == {} and settings["samples"]["seed"] == 3
    assert settings["samples"]["output"] == str(out)


def test_bad_configuration_is_refused_before_any_file(tiny_sequence, tmp_path):
    config = SampleConfig(**{**TINY_SAMPLES, "n_ranks": 25})  # more ranks than the 20 frames allow
    with pytest.raises(ValueError, match="25 PCA ranks need more frames"):
        write_sample_file(tiny_sequence, config, tmp_path / "s.h5", n_jobs=1, progress=False)
    assert list(tmp_path.iterdir()) == []  # no sample file, no .parts folder, no settings


def test_resume_refuses_parts_of_another_configuration(tiny_sequence, tmp_path):
    # an interrupted run of one configuration ...
    parts = tmp_path / "s.h5.parts"
    parts.mkdir()
    (parts / "state.json").write_text('{"identity": {"config_sha256": "other"}, "oracle": {"flux_range": []}}')
    # ... is not resumed with another: the settings are not written either
    with pytest.raises(ValueError, match="interrupted run of another sequence or configuration"):
        write_sample_file(tiny_sequence, SampleConfig(**TINY_SAMPLES), tmp_path / "s.h5", n_jobs=1, progress=False)
    assert not (tmp_path / "s.toml").exists() and not (tmp_path / "s.h5").exists()
