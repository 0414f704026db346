import dataclasses
import inspect
import json
import re
from pathlib import Path

import pytest

from sodinn.config import (
    DataConfig,
    EngineConfig,
    InjectionConfig,
    LimitConfig,
    PredictConfig,
    ReduceConfig,
    RocConfig,
    SampleConfig,
    TrainConfig,
    check_known_keys,
    dump_toml,
    field_names,
    load_toml,
)
from sodinn.exceptions import SettingError

ALL = (DataConfig, EngineConfig, InjectionConfig, LimitConfig, PredictConfig, ReduceConfig, RocConfig, SampleConfig,
       TrainConfig)

# a configuration of each class with settings away from the defaults
NON_DEFAULT = {
    DataConfig: DataConfig(cube="cube.fits", angles="angles.fits", psf="psf.fits", fwhm_px=4.7, pixel_scale_arcsec=0.0272),
    EngineConfig: EngineConfig(scheduler="tcp://10.0.0.5:8786", n_workers=3),
    InjectionConfig: InjectionConfig(lambda_d_px=4.5, known_sources_xy=((62.0, 63.0),), npix=3, seed=4),
    LimitConfig: LimitConfig(separations_lambda_d=(1.0, 2.0), flux_ladder=(10.0, 20.0, 40.0), prob_threshold=0.8,
                             baselines=("median", "annular-7"), known_sources_xy=((1.0, 2.0),)),
    PredictConfig: PredictConfig(threshold=0.75, batch_size=64),
    ReduceConfig: ReduceConfig(method="pca", ncomp=5),
    RocConfig: RocConfig(bands_lambda_d=((1.0, 1.5),), copies_per_band=7, flux_range=(0.0, 0.0),
                         baselines=("pca-3", "annular-5"), prob_thresholds=(0.5, 0.9), calibrate=False),
    SampleConfig: SampleConfig(patch_px=9, n_ranks=3, k_policy="fixed", k_list=(1, 4, 9), r_out_fwhm=5.0,
                               snr_range=(0.5, 2.0), known_sources_xy=((62.0, 63.0), (10.5, 3.0)), augment=True,
                               memory_budget_gib=1.5, linalg_backend="keras"),
    TrainConfig: TrainConfig(model="conv3d", epochs=3, learning_rate=1e-3, report_random_split=True, seed=2),
}


# ---------------------------------------------------------------- dicts


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_configuration_round_trips_through_a_dict(cls):
    for config in (cls(), NON_DEFAULT[cls]):
        values = config.to_dict()
        assert list(values) == list(field_names(cls))
        assert json.loads(json.dumps(values)) == values  # plain JSON: tuples became lists
        again = cls.from_dict(values)
        assert again == config and type(again) is cls
    assert NON_DEFAULT[cls] != cls()  # the non-default one really differs


@pytest.mark.parametrize(
    ("cls", "what"),
    [(SampleConfig, "sample"), (TrainConfig, "training"), (DataConfig, "data"), (ReduceConfig, "reduce"),
     (PredictConfig, "predict"), (RocConfig, "ROC"), (LimitConfig, "limits"), (EngineConfig, "engine")],
)
def test_unknown_keys_are_refused_by_name(cls, what):
    values = {**cls().to_dict(), "zzz_typo": 1, "bogus": 2}
    known = ", ".join(sorted(field_names(cls)))
    with pytest.raises(ValueError, match=rf"^unknown {what} setting\(s\): bogus, zzz_typo; known: {known}$"):
        cls.from_dict(values)


def test_check_known_keys_and_its_extra_keys():
    check_known_keys(ReduceConfig, {"method": "pca", "output": "out.fits"}, "reduce", extra=("output",))
    with pytest.raises(ValueError, match=r"unknown reduce setting\(s\): output; known: delta_rot, method, ncomp$"):
        check_known_keys(ReduceConfig, {"method": "pca", "output": "out.fits"}, "reduce")
    with pytest.raises(ValueError, match=r"unknown reduce setting\(s\): outptu; known: delta_rot, method, ncomp, output$"):
        check_known_keys(ReduceConfig, {"outptu": "out.fits"}, "reduce", extra=["output"])
    check_known_keys(ReduceConfig, {}, "reduce")


def test_field_names_are_in_definition_order():
    assert field_names(DataConfig) == ("cube", "angles", "psf", "fwhm_px", "pixel_scale_arcsec", "nan_policy", "cube_hdu",
                                       "angles_hdu", "angles_column", "psf_hdu", "allow_small_rotation", "north_offset_deg",
                                       "star_center_xy", "psf_exposure_s", "cube_exposure_s", "psf_nd_transmission", "star_flux",
                                       "npz")
    assert field_names(ReduceConfig) == ("method", "ncomp", "delta_rot")
    assert field_names(PredictConfig) == ("fp_budget", "threshold", "calibration_nulls", "seed", "known_sources_xy", "batch_size")
    assert field_names(EngineConfig) == ("scheduler", "n_workers")
    assert field_names(SampleConfig)[:3] == ("patch_px", "n_ranks", "k_policy")
    assert field_names(SampleConfig)[-2:] == ("memory_budget_gib", "linalg_backend")
    n = len(field_names(InjectionConfig))
    assert field_names(RocConfig)[:n] == field_names(InjectionConfig)  # inherited fields first
    assert field_names(RocConfig)[n] == "bands_lambda_d"
    assert field_names(LimitConfig)[n] == "separations_lambda_d"
    assert field_names(ReduceConfig) == tuple(f.name for f in dataclasses.fields(ReduceConfig))


# ---------------------------------------------------------------- sodinn 0.1 keys


def test_sodinn_01_roc_keys_are_read():
    cfg = RocConfig.from_dict({"baselines": ["median", "pca", "annular"], "annular_ncomps": [5, 10], "pca_ncomp": 7})
    assert cfg.baselines == ("median", "pca-7", "annular-5", "annular-10")
    assert RocConfig.from_dict({"annular_ncomps": [3]}).baselines == ("median", "pca", "annular-3")
    assert RocConfig.from_dict({"pca_ncomp": 4}).baselines == ("median", "pca-4", "annular-5", "annular-10", "annular-20")
    assert RocConfig.from_dict({"baselines": ["median"]}).baselines == ("median",)  # no legacy key: as written


def test_sodinn_01_limit_key_is_read():
    assert LimitConfig.from_dict({"annular_ncomp": 5}).baselines == ("annular-5",)
    assert LimitConfig.from_dict({"annular_ncomp": 12, "baselines": ["median"]}).baselines == ("annular-12",)
    with pytest.raises(ValueError, match=r"unknown limits setting\(s\): annular_ncomps"):
        LimitConfig.from_dict({"annular_ncomps": [5]})  # the ROC key is not a limits key
    with pytest.raises(ValueError, match=r"unknown ROC setting\(s\): annular_ncomp"):
        RocConfig.from_dict({"annular_ncomp": 5})


# ---------------------------------------------------------------- injection settings


@pytest.mark.parametrize("cls", [RocConfig, LimitConfig])
def test_roc_and_limits_share_the_injection_settings(cls):
    assert issubclass(cls, InjectionConfig)
    base = {f.name: f.default for f in dataclasses.fields(InjectionConfig)}
    mine = {f.name: f.default for f in dataclasses.fields(cls)}
    assert {k: mine[k] for k in base} == base
    config = cls(npix=4, overlap_threshold=0.5, max_blob_fact=3.0, known_sources_xy=((1, 2),))
    assert config.scoring() == {"npix": 4, "overlap_threshold": 0.5, "max_blob_fact": 3.0, "known_sources_xy": ((1.0, 2.0),)}
    assert config.scoring() == InjectionConfig(npix=4, overlap_threshold=0.5, max_blob_fact=3.0,
                                               known_sources_xy=((1, 2),)).scoring()
    with pytest.raises(ValueError, match="overlap_threshold must be in"):
        cls(overlap_threshold=1.0)
    with pytest.raises(ValueError, match="npix must be >= 1"):
        cls(npix=0)


def test_injection_scoring_keys_are_score_blobs_arguments():
    from sodinn.detect.scoring import score_blobs

    params = inspect.signature(score_blobs).parameters
    assert set(InjectionConfig().scoring()) <= set(params)


@pytest.mark.parametrize("cls", [RocConfig, LimitConfig])
@pytest.mark.parametrize(
    ("baselines", "match"),
    [
        (("annular-0",), "baselines must hold baseline names, optionally with a rank .*got 'annular-0'"),
        (("annular-5", "median", "annular-5"), r"baselines lists a method twice: \['annular-5', 'median', 'annular-5'\]"),
        ((5,), "baselines must hold baseline names.*got 5"),
        (("annular 5",), "got 'annular 5'"),
        (("-5",), "got '-5'"),
        (("",), "got ''"),
    ],
)
def test_baseline_specs_are_checked_for_form(cls, baselines, match):
    with pytest.raises(ValueError, match=match):
        cls(baselines=baselines)


@pytest.mark.parametrize("cls", [RocConfig, LimitConfig])
def test_good_baseline_specs_are_kept_as_written(cls):
    specs = ("median", "pca", "annular-10", "my_method-3", "multi-word-name")
    assert cls(baselines=list(specs)).baselines == specs


# ---------------------------------------------------------------- the default threshold


def test_predict_config_owns_the_default_budget_and_the_probability_threshold_is_one_constant():
    from sodinn.config import PROBABILITY_THRESHOLD
    from sodinn.detect.candidates import binary_map, find_calibrated_candidates, find_candidates
    from sodinn.pipeline.survey import Target

    assert PredictConfig().fp_budget == PredictConfig.fp_budget == 1.0 and PredictConfig().calibrated
    assert PredictConfig().threshold is None and not PredictConfig(threshold=0.9).calibrated
    assert inspect.signature(find_calibrated_candidates).parameters["fp_budget"].default == PredictConfig.fp_budget
    for func in (find_candidates, binary_map):
        assert inspect.signature(func).parameters["threshold"].default == PROBABILITY_THRESHOLD == 0.9
    assert LimitConfig().prob_threshold == PROBABILITY_THRESHOLD
    assert {f.name: f.default_factory() for f in dataclasses.fields(Target) if f.name == "predict"} == {"predict": PredictConfig()}


@pytest.mark.parametrize("budget", [0, -1.0, float("inf"), float("nan"), True, "1"])
def test_predict_config_budget_must_be_a_positive_number(budget):
    with pytest.raises(ValueError, match=r"fp_budget must be a number of false positives per frame > 0"):
        PredictConfig(fp_budget=budget)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(cube=3), TypeError, "cube must be a file name in quotes; got 3"),
        (dict(psf=["psf.fits"]), TypeError, r"psf must be a file name in quotes; got \['psf.fits'\]"),
        (dict(fwhm_px=-1.0), ValueError, "fwhm_px must be > 0; got -1.0"),
        (dict(pixel_scale_arcsec=0), ValueError, "pixel_scale_arcsec must be > 0; got 0.0"),
        (dict(fwhm_px="4"), TypeError, "fwhm_px must be a real number; got str"),
    ],
)
def test_data_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DataConfig(**kwargs)


def test_data_config_paths_and_missing():
    cfg = DataConfig(cube=Path("a/cube.fits"), fwhm_px=4)
    assert cfg.cube == "a/cube.fits" and isinstance(cfg.cube, str)
    assert cfg.fwhm_px == 4.0 and isinstance(cfg.fwhm_px, float)
    assert cfg.missing == ("angles", "psf")
    assert DataConfig().missing == ("cube", "angles", "psf")
    assert NON_DEFAULT[DataConfig].missing == ()


def test_data_config_npz_names_the_data_alone():
    cfg = DataConfig(npz=Path("data/ds.npz"), fwhm_px=4)
    assert cfg.npz == "data/ds.npz" and cfg.missing == ()
    assert DataConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="npz and cube, psf both name the data; keep npz"):
        DataConfig(npz="ds.npz", cube="c.fits", psf="p.fits")
    with pytest.raises(ValueError, match="cube_hdu, angles_column apply to FITS files, not to npz"):
        DataConfig(npz="ds.npz", cube_hdu=1, angles_column="PARANG")
    with pytest.raises(TypeError, match="npz must be a file name in quotes"):
        DataConfig(npz=3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(scheduler="threads"), ValueError, "scheduler must be 'processes', 'synchronous' or a Dask scheduler address"),
        (dict(scheduler="tcp://host"), ValueError, r"got 'tcp://host'"),
        (dict(scheduler=8786), TypeError, "scheduler must be None, 'processes', 'synchronous'.*got int"),
        (dict(n_workers=0), ValueError, r"the number of workers \(n_workers\) must be a positive integer; got 0"),
        (dict(n_workers=True), ValueError, r"n_workers\) must be a positive integer; got True"),
        (dict(n_workers=2.0), ValueError, r"n_workers\) must be a positive integer; got 2.0"),
    ],
)
def test_engine_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        EngineConfig(**kwargs)


@pytest.mark.parametrize("scheduler", [None, "processes", "synchronous", "tcp://10.0.0.5:8786"])
def test_engine_config_accepts_schedulers(scheduler):
    assert EngineConfig(scheduler=scheduler, n_workers=2).scheduler == scheduler


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(method=""), TypeError, "method must be the name of a baseline, e.g. 'annular'; got ''"),
        (dict(method=None), TypeError, "method must be the name of a baseline.*got None"),
        (dict(ncomp=0), ValueError, "ncomp must be >= 1; got 0"),
        (dict(ncomp=2.5), TypeError, "ncomp must be an integer; got float 2.5"),
    ],
)
def test_reduce_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        ReduceConfig(**kwargs)


@pytest.mark.parametrize("threshold", [0, 1, 1.5, -0.1, True, "0.9"])
def test_predict_config_threshold_must_be_a_probability(threshold):
    with pytest.raises(ValueError, match=r"threshold must be a probability in \(0, 1\), e.g. 0.9; got"):
        PredictConfig(threshold=threshold)


def test_predict_config_keeps_a_float_threshold():
    cfg = PredictConfig(threshold=0.5)
    assert cfg.threshold == 0.5 and type(cfg.threshold) is float
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        PredictConfig(batch_size=0)


def test_train_config_errors():
    with pytest.raises(TypeError, match="model must be the name of a registered model"):
        TrainConfig(model="")
    for name in ("val_fraction", "test_fraction"):
        with pytest.raises(ValueError, match=rf"{name} must be in \(0, 0.5\); got 0.5"):
            TrainConfig(**{name: 0.5})
    with pytest.raises(ValueError, match="decay must be >= 0"):
        TrainConfig(decay=-0.1)


def test_sample_config_digest_ignores_how_the_work_is_cut():
    base = SampleConfig()
    assert SampleConfig(memory_budget_gib=0.5, linalg_backend="keras").digest() == base.digest()
    assert SampleConfig(seed=1).digest() != base.digest()
    assert len(base.digest()) == 64


def test_roc_and_limit_values_are_normalised():
    roc = RocConfig(snr_thresholds=(3, 1, 2), prob_thresholds=(0.9, 0.5), fp_targets=(1.0, 0.1))
    assert roc.snr_thresholds == (1.0, 2.0, 3.0) and roc.prob_thresholds == (0.5, 0.9) and roc.fp_targets == (0.1, 1.0)
    with pytest.raises(ValueError, match=r"prob_thresholds must lie in \(0, 1\)"):
        RocConfig(prob_thresholds=(0.5, 1.0))
    with pytest.raises(ValueError, match="snr_range must be"):
        RocConfig(snr_range=(3.0, 1.0))
    with pytest.raises(ValueError, match="bands_lambda_d must be"):
        RocConfig(bands_lambda_d=((2.0, 1.0),))
    lim = LimitConfig(separations_lambda_d=(2.5, 1.5, 2.5))
    assert lim.separations_lambda_d == (1.5, 2.5)
    with pytest.raises(ValueError, match="flux_ladder must hold at least 2 distinct positive values"):
        LimitConfig(flux_ladder=(5.0, 5.0))
    with pytest.raises(ValueError, match=r"prob_threshold must lie in \(0, 1\)"):
        LimitConfig(prob_threshold=1.0)


# ---------------------------------------------------------------- TOML


def test_toml_round_trip(tmp_path):
    tables = {"samples": NON_DEFAULT[SampleConfig].to_dict(), "roc": NON_DEFAULT[RocConfig].to_dict(),
              "data": DataConfig(cube="c.fits").to_dict()}
    path = dump_toml(tmp_path / "run.toml", tables)
    assert path == tmp_path / "run.toml" and [p.name for p in tmp_path.iterdir()] == ["run.toml"]  # no temporary left
    read = load_toml(path, sections=("samples", "roc", "data", "train"))
    assert SampleConfig.from_dict(read["samples"]) == NON_DEFAULT[SampleConfig]
    assert RocConfig.from_dict(read["roc"]) == NON_DEFAULT[RocConfig]
    assert DataConfig.from_dict(read["data"]) == DataConfig(cube="c.fits")  # None values are left out
    assert "angles" not in read["data"]


def test_toml_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="configuration file not found"):
        load_toml(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[samples\npatch_px = 9\n")
    with pytest.raises(ValueError, match="is not valid TOML"):
        load_toml(bad)
    extra = dump_toml(tmp_path / "extra.toml", {"samples": {"seed": 1}, "sampels": {"seed": 2}})
    with pytest.raises(ValueError, match=r"unknown section\(s\) sampels; expected roc, samples"):
        load_toml(extra, sections=["samples", "roc"])
    assert load_toml(extra) == {"samples": {"seed": 1}, "sampels": {"seed": 2}}


def test_an_old_key_of_the_other_experiment_is_refused_beside_its_own():
    with pytest.raises(ValueError, match=r"unknown ROC setting\(s\): annular_ncomp;"):
        RocConfig.from_dict({"annular_ncomps": [5], "annular_ncomp": 3})
    with pytest.raises(ValueError, match=r"unknown limits setting\(s\): annular_ncomps;"):
        LimitConfig.from_dict({"annular_ncomp": 5, "annular_ncomps": [5]})


def test_data_config_sky_and_photometry_settings():
    config = DataConfig.from_dict({"north_offset_deg": -104.39, "psf_exposure_s": 0.2, "cube_exposure_s": 0.4,
                                   "psf_nd_transmission": 0.01, "star_flux": 764939.6})
    assert (config.north_offset_deg, config.psf_exposure_s, config.star_flux) == (-104.39, 0.2, 764939.6)
    default = DataConfig()
    assert (default.north_offset_deg, default.psf_exposure_s, default.cube_exposure_s, default.psf_nd_transmission,
            default.star_flux) == (0.0, 1.0, 1.0, 1.0, None)
    for values, words in (({"north_offset_deg": "104"}, "north_offset_deg must be a finite number of degrees"),
                          ({"cube_exposure_s": -1}, "cube_exposure_s must be a time in seconds"),
                          ({"psf_nd_transmission": 0.0}, "psf_nd_transmission must be a fraction in (0, 1]"),
                          ({"psf_nd_transmission": 3.0}, "pass 10**-d"),
                          ({"star_flux": True}, "star_flux must be the star's flux")):
        with pytest.raises(SettingError, match=re.escape(words)):
            DataConfig.from_dict(values)
