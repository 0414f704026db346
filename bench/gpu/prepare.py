"""Pack what ``bench/gpu/run.sh`` needs on a GPU machine lent through this workplace's device tool (issue 16).

The device machine (one NVIDIA H200; see the README's *Performance* section) receives this checkout
and nothing beside it, and cannot reach PyPI. Its image holds Python 3.12 with JAX, PyTorch, numpy,
scipy, h5py, numba, matplotlib, scikit-learn and others, but not Keras, astropy or regions. This
script, run here with the project's environment::

    .venv/bin/python bench/gpu/prepare.py

1. downloads Python 3.12 manylinux wheels of the packages sodinn needs there and the image lacks, in
   the versions this environment has (``pip download --no-deps``), into ``.device/wheels``;
2. checks that every requirement of those wheels, and every dependency of sodinn that the benchmark
   imports, is either among the wheels or in the image's package list (a missing one would stop the
   one-shot run there), and fails naming it if not;
3. copies the NACO sequence (``../shared/data/naco_betapic``: cube, angles, PSF), which does not travel
   with the checkout, into ``.device/data`` (a transient copy for the device tool, never committed);
4. lists ``/.device/`` in ``.git/info/exclude`` so that git ignores it, and prints the call to make.

``.device`` is then named in the device tool's ``carry``; the run installs the wheels into
``/tmp/site``. Nothing here needs a GPU.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEVICE = REPO / ".device"
DATA = REPO.parent / "shared" / "data" / "naco_betapic"

# Carried as wheels: sodinn's dependencies (and theirs) that the device image does not hold.
WHEELS = ("keras", "namex", "optree", "astropy", "pyerfa", "astropy-iers-data", "regions")
# sodinn's dependencies the benchmark does not import there: TensorFlow (JAX or PyTorch runs Keras on the
# GPU) and Dask (only sodinn.engine's scheduler="dask").
NOT_NEEDED = {"tensorflow", "dask"}
# The device image's Python packages, as the device tool's KINDS.md lists them (read 2026-11-17).
IMAGE = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft
pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash
yarl zipp""".split()
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "manylinux_2_24_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64")
# The device's Python, for evaluating requirement markers.
MARKERS = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
           "platform_machine": "x86_64", "os_name": "posix", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "extra": ""}


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(lines: list[str]) -> list[str]:
    """Names of the requirements among ``lines`` (PEP 508) that apply on the device's Python, extras left out."""
    from packaging.requirements import Requirement

    names = []
    for line in lines:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(MARKERS):
            names.append(normalize(req.name))
    return names


def wheel_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` names of a wheel that apply on the device's Python."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    return requirements([ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Requires-Dist:")])


def download(names: tuple[str, ...], dest: Path) -> None:
    """``pip download`` the wheels of ``names`` in this environment's versions for CPython 3.12 on x86-64 Linux."""
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in names]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(dest), *pins]
    subprocess.run(cmd, check=True)


def missing(wheels: list[Path]) -> dict[str, list[str]]:
    """Requirements (of sodinn and of the wheels) found neither among the wheels nor in the device image."""
    have = {normalize(n) for n in IMAGE} | {normalize(w.name.split("-")[0]) for w in wheels}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    needs = {"sodinn": [n for n in requirements(project) if n not in NOT_NEEDED]}
    needs |= {w.name: wheel_requirements(w) for w in wheels}
    return {who: gone for who, names in needs.items() if (gone := sorted(set(names) - have))}


def git_exclude(pattern: str) -> None:
    """Add ``pattern`` to this checkout's ``.git/info/exclude`` (once)."""
    path = Path(subprocess.run(["git", "rev-parse", "--git-path", "info/exclude"], cwd=REPO, check=True,
                               capture_output=True, text=True).stdout.strip())
    path = path if path.is_absolute() else REPO / path
    lines = path.read_text().splitlines() if path.exists() else []
    if pattern not in lines:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([*lines, pattern]) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="folder with cube.fits, angles.fits, psf.fits (default: %(default)s)")
    args = parser.parse_args(argv)
    git_exclude("/.device/")
    wheels_dir, data_dir = DEVICE / "wheels", DEVICE / "data"
    shutil.rmtree(wheels_dir, ignore_errors=True)
    wheels_dir.mkdir(parents=True)
    download(WHEELS, wheels_dir)
    wheels = sorted(wheels_dir.glob("*.whl"))
    if gone := missing(wheels):
        for who, names in gone.items():
            print(f"{who} needs {', '.join(names)}: neither carried nor in the device image; add it to WHEELS",
                  file=sys.stderr)
        return 1
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ("cube.fits", "angles.fits", "psf.fits"):
        (data_dir / name).unlink(missing_ok=True)  # a copy made earlier keeps the shared files' read-only mode
        shutil.copy2(Path(args.data) / name, data_dir / name)
    size = sum(f.stat().st_size for f in DEVICE.rglob("*") if f.is_file())
    print(f"{len(wheels)} wheels ({', '.join(w.name for w in wheels)}) and the NACO sequence in {DEVICE.relative_to(REPO)}/, "
          f"{size / 2**20:.1f} MiB (the device tool carries 64 MiB at most, the checkout included)")
    print('then: run(command="bash bench/gpu/run.sh", carry=[".device"], timeout_s=570)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
