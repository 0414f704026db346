"""Run the code cells of the tutorial notebooks in-process (no Jupyter needed) and check their results."""

import json
import os
from pathlib import Path

import matplotlib

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
