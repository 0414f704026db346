"""Run the code cells of the tutorial notebooks in-process (no Jupyter needed) and check their results."""

import json
import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _run_notebook(path: Path, data_dir: Path) -> dict:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nb = json.loads(path.read_text())
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            source = source.replace('Path("../../shared/data/naco_betapic")', f"Path({str(data_dir)!r})")
            exec(compile(source, f"{path.name}:{cell['id']}", "exec"), namespace)
    finally:
        os.chdir(cwd)
        plt.close("all")
    return namespace


def test_adi_core_notebook(naco_paths):
    ns = _run_notebook(NOTEBOOKS / "01_adi_core_naco.ipynb", naco_paths["cube"].parent)
    assert ns["seq"].n_frames == 61
    assert ns["snr"](ns["frames"]["annular PCA-ADI (10 PCs)"], (62, 63), ns["seq"].fwhm_px) > 8
    assert ns["fake_snr"] > 5


@pytest.mark.slow
def test_detection_notebook_finds_beta_pic_b(naco_paths, tmp_path, monkeypatch):
    """The fast variant of the detection tutorial (the configuration of test_training.py, ~2 min on 2 cores)."""
    monkeypatch.setenv("SODINN_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("SODINN_NOTEBOOK_OUT", str(tmp_path))
    ns = _run_notebook(NOTEBOOKS / "02_detection_naco.ipynb", naco_paths["cube"].parent)
    assert ns["FAST"] and (tmp_path / "samples.h5").is_file() and (tmp_path / "model" / "model.json").is_file()
    assert ns["sample_config"].known_sources_xy == ((62.0, 63.0),)
    assert ns["result"].metrics["auc"] > 0.85
    table = ns["table"]
    assert np.hypot(table["x"][0] - 62, table["y"][0] - 63) < 2.0  # beta Pic b, masked in training, comes first
    assert table["snr_pca"][0] > 5 and ns["distance"] < 2.0
    assert ns["pmap"].evaluated.any() and ns["pmap"].probability.max() <= 1.0
