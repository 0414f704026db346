import warnings

import numpy as np
import pytest
from astropy.io import fits

import sodinn
from sodinn.adi.io import read_cube
from sodinn.exceptions import GeometryWarning, PSFWarning, SodinnWarning


def test_warning_hierarchy():
    assert issubclass(SodinnWarning, UserWarning)
    assert issubclass(GeometryWarning, SodinnWarning)
    assert issubclass(PSFWarning, SodinnWarning)
    assert not issubclass(SodinnWarning, GeometryWarning)
    assert sodinn.SodinnWarning is SodinnWarning  # the package exports it


def test_a_geometry_warning_is_caught_by_a_sodinn_filter():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=SodinnWarning)
        warnings.warn("annulus clipped", GeometryWarning, stacklevel=1)  # no error: the filter covers the subclass
    with pytest.warns(SodinnWarning, match="clipped"):
        warnings.warn("clipped", GeometryWarning, stacklevel=1)


def _nan_cube(tmp_path):
    cube = np.ones((3, 9, 9))
    cube[0, 4, 4] = np.nan
    path = tmp_path / "nan.fits"
    fits.PrimaryHDU(cube).writeto(path)
    return path


def test_a_real_sodinn_warning_is_caught_by_its_category(tmp_path):
    path = _nan_cube(tmp_path)
    with pytest.warns(SodinnWarning, match=r"nan.fits: 1 NaN/inf pixel\(s\) set to 0") as record:
        read_cube(path, nan_policy="zero")
    assert len(record) == 1 and record[0].category is SodinnWarning
    assert issubclass(record[0].category, UserWarning)
    assert record[0].filename == __file__  # stacklevel points at the caller


def test_a_sodinn_filter_silences_it_and_an_error_filter_raises_it(tmp_path):
    path = _nan_cube(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=SodinnWarning)
        assert read_cube(path, nan_policy="zero")[0, 4, 4] == 0.0
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=SodinnWarning)
        with pytest.raises(SodinnWarning, match="set to 0"):
            read_cube(path, nan_policy="zero")
