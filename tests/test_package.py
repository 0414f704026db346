"""The package's façade: light import, public names that are functions and classes, old module paths kept one release."""

import importlib
import inspect
import pickle
import subprocess
import sys
import warnings

import pytest

import sodinn


def test_public_names_resolve():
    for name in sodinn.__all__:
        assert getattr(sodinn, name) is not None, name
    assert sodinn.__version__
    assert sorted(dir(sodinn)) == sorted(sodinn.__all__)


def test_public_names_are_functions_and_classes_not_modules():
    from sodinn.adi.baselines import pca_annular
    from sodinn.adi.sequence import ADISequence
    from sodinn.adi.snr import snr, snr_map

    # the README's first Python lines (``sodinn.snr`` used to be the module, and calling it failed)
    assert (sodinn.ADISequence, sodinn.pca_annular, sodinn.snr, sodinn.snr_map) == (ADISequence, pca_annular, snr, snr_map)
    for name in sodinn._PUBLIC:
        obj = getattr(sodinn, name)
        assert inspect.isfunction(obj) or inspect.isclass(obj), name
    for name in sodinn._MODULES:
        assert inspect.ismodule(getattr(sodinn, name)), name
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        sodinn.nonsense  # noqa: B018


@pytest.mark.naco
def test_readme_python_example_gives_the_s_n_of_beta_pic_b(naco_paths):
    from sodinn import ADISequence, pca_annular, snr, snr_map

    seq = ADISequence.from_fits(naco_paths["cube"], naco_paths["angles"], naco_paths["psf"], pixel_scale_arcsec=0.0272)
    frame = pca_annular(seq.cube, seq.angles_deg, seq.fwhm_px, ncomp=10)
    assert snr_map(frame, seq.fwhm_px).shape == frame.shape
    assert round(snr(frame, (62, 63), seq.fwhm_px), 2) == 9.13


def test_import_is_light():
    code = (
        "import sys, sodinn; "
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib', 'vip_hci', 'astropy') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize(("old", "name", "new"), [
    ("sodinn.pca", "gram_basis", "sodinn.adi.pca"),
    ("sodinn.training", "load_trained", "sodinn.learn.artifact"),
    ("sodinn.training", "train", "sodinn.learn.training"),
    ("sodinn.samples", "AnnulusOperator", "sodinn.mlar.operator"),
    ("sodinn.roc", "run_roc", "sodinn.evaluate.roc"),
    ("sodinn.limits", "write_limits", "sodinn.pipeline.limits"),
    ("sodinn.store", "SampleFile", "sodinn.mlar.store"),
])
def test_old_module_paths_import_with_a_deprecation_warning(old, name, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to .*{new}"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(f"from {old} import {name}", {})  # imported once: no second warning
    with pytest.raises(AttributeError, match="has no attribute 'nonsense'"):
        module.nonsense  # noqa: B018
    assert name in dir(module)


def test_the_deprecation_warning_points_at_the_importing_line():
    sys.modules.pop("sodinn.geometry", None)
    with pytest.warns(DeprecationWarning) as record:
        import sodinn.geometry  # noqa: F401
    assert record[0].filename == __file__


def test_an_old_pickle_naming_an_old_module_loads():
    from sodinn.learn.models import SODIRF

    # protocol 0 names classes by "module\nname\n" lines, so the module can be replaced in the bytes
    blob = pickle.dumps(SODIRF(n_estimators=3, seed=7), protocol=0).replace(b"sodinn.learn.models", b"sodinn.models")
    assert b"sodinn.models" in blob
    sys.modules.pop("sodinn.models", None)
    with pytest.warns(DeprecationWarning, match="sodinn.models moved to sodinn.learn.models"):
        restored = pickle.loads(blob)
    assert isinstance(restored, SODIRF) and restored.n_estimators == 3 and restored.seed == 7


def test_snr_is_the_function_not_an_old_module_path():
    with pytest.raises(ModuleNotFoundError, match="sodinn.snr is the S/N function now.*its module is sodinn.adi.snr"):
        importlib.import_module("sodinn.snr")
    assert callable(sodinn.snr)


def test_an_old_module_reached_as_an_attribute_warns_at_the_callers_line():
    sys.modules.pop("sodinn.binning", None)
    with pytest.warns(DeprecationWarning, match="sodinn.binning moved to sodinn.adi.binning") as record:
        module = sodinn.binning
    assert len(record) == 1 and record[0].filename == __file__
    from sodinn.adi.binning import bin_frames

    assert module.bin_frames is bin_frames
