"""Fingerprints of the pipeline's products, to show that a refactor changes no number.

Runs, through the ``sodinn`` command line only (so that the same script runs on any revision of the
package), on the real NACO beta Pic sequence:

1. ``sodinn samples`` with the default NACO configuration (8550 samples, K = 20, P = 11);
2. ``sodinn samples`` small (30 per class and annulus, K = 10) and ``sodinn train`` on it (2 epochs);
3. ``sodinn roc`` with that model and every baseline, 2 copies per band, calibration included;

and prints one SHA-256 per product: the sample file's datasets and attributes (HDF5 files carry
timestamps, so the bytes of the file itself differ between runs), the model's weights and held-out
metrics, the ROC table, summary and injections, and every cached map. Two revisions compute the same
numbers when they print the same lines::

    .venv/bin/python bench/identity.py --output /tmp/after
    PYTHONPATH=/path/to/old/checkout .venv/bin/python bench/identity.py --output /tmp/before
    diff <(grep sha256 /tmp/before/fingerprints.txt) <(grep sha256 /tmp/after/fingerprints.txt)

About 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NACO = Path(os.environ.get("SODINN_NACO_DIR", REPO.parent / "shared" / "data" / "naco_betapic"))


def run(*args: str) -> None:
    """Run ``sodinn ARGS`` in a fresh interpreter (the package found on this interpreter's path)."""
    start = time.perf_counter()
    cmd = [sys.executable, "-c", "import sys; from sodinn.cli import main; sys.exit(main())", *args, "--quiet"]
    subprocess.run(cmd, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    print(f"# sodinn {args[0]}: {time.perf_counter() - start:.0f} s", flush=True)


def digest(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def sample_file_digests(path: Path) -> dict[str, str]:
    """One digest per dataset (values, dtype, shape) and per attribute, in name order."""
    import h5py

    out: dict[str, str] = {}
    with h5py.File(path, "r") as h:
        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                out[f"dataset {name}"] = digest(str(data.dtype).encode(), str(data.shape).encode(), data.tobytes())
        h.visititems(visit)
        for key in sorted(h.attrs):
            value = h.attrs[key]
            out[f"attr {key}"] = digest(str(value).encode())
    return dict(sorted(out.items()))


def model_digests(folder: Path) -> dict[str, str]:
    """The weights (every array, in layer order) and the held-out metrics of a model folder."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    model = keras.saving.load_model(folder / "model.keras")
    weights = digest(*(w.tobytes() for w in model.get_weights()))
    meta = json.loads((folder / "model.json").read_text())
    return {"weights": weights, "metrics": digest(json.dumps(meta["metrics"], sort_keys=True).encode()),
            "history.csv": digest((folder / "history.csv").read_bytes())}


def roc_digests(folder: Path) -> dict[str, str]:
    out = {name: digest((folder / name).read_bytes()) for name in ("roc.csv", "summary.txt", "injections.ecsv")}
    import numpy as np

    maps = sorted(folder.glob("cache/**/*.npy"))
    by_copy: dict[str, list[bytes]] = {}
    for path in maps:
        # method tag folder / copy file: the cache's layout, independent of the run's key folder; a model's tag is
        # the digest of its model.json, which names the sample file's checksum (HDF5 timestamps): left out
        tag = "model" if path.parent.name.startswith("model-") else path.parent.name
        by_copy.setdefault(tag, []).append(np.load(path).tobytes())
    for tag, frames in sorted(by_copy.items()):
        out[f"maps {tag} ({len(frames)} copies)"] = digest(*frames)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", "-o", default="identity_output", help="folder for the products (default: %(default)s)")
    args = parser.parse_args(argv)
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = ["--cube", str(NACO / "cube.fits"), "--angles", str(NACO / "angles.fits"), "--psf", str(NACO / "psf.fits"),
            "--pixel-scale", "0.0272"]
    config = REPO / "configs" / "naco_betapic.toml"

    run("samples", "--config", str(config), "-o", str(out / "naco_full.h5"), "--no-resume", "-j", "2")
    run("samples", *data, "--mask", "62", "63", "--per-annulus", "30", "--ranks", "10", "-o", str(out / "small.h5"),
        "--no-resume", "-j", "2")
    run("train", str(out / "small.h5"), "-o", str(out / "model"), "--epochs", "2", "--batch-size", "64", "--no-resume")
    roc_config = out / "roc.toml"
    roc_config.write_text(
        "[data]\n" + "".join(f'{k} = "{NACO / (k + ".fits")}"\n' for k in ("cube", "angles", "psf"))
        + "pixel_scale_arcsec = 0.0272\n\n[roc]\n"
        + f'models = ["small={out / "model"}"]\ncopies_per_band = 2\ncalibration_nulls = 2\n'
        + "known_sources_xy = [[62.0, 63.0]]\nseed = 0\n"
    )
    run("roc", str(roc_config), "-o", str(out / "roc"), "--no-resume", "-j", "2")

    lines = []
    for title, values in (("samples naco_full.h5", sample_file_digests(out / "naco_full.h5")),
                          ("samples small.h5", sample_file_digests(out / "small.h5")),
                          ("model", model_digests(out / "model")),
                          ("roc", roc_digests(out / "roc"))):
        for key, value in values.items():
            lines.append(f"{title} | {key} | sha256 {value}")
    text = "\n".join(lines) + "\n"
    (out / "fingerprints.txt").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
