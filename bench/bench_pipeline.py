"""Benchmark of the default NACO pipeline from a cold start: samples -> train -> predict (issue 16).

Each stage is the command line in a fresh process (``python -m sodinn.cli samples|train|predict
--config configs/naco_betapic.toml``, outputs in a fresh folder), timed for wall-clock and CPU time
(its own and its children's, from ``getrusage``) and peak memory; ``predict``'s log lines that
report a stage's time (e.g. calibration) are printed beside it. Then:

- the training stage's arithmetic rate: the FLOPs of its epochs (3x forward per training sample,
  1x per validation and test sample, counted from the model's layer shapes by :func:`model_flops`)
  per wall-clock second, as a share of the float32 matrix-multiply rate of this machine measured by
  this process just before and after the stage;
- the training step, side by side in one process with the matmul rate measured between the passes:
  today's ``model.fit`` on the samples kept in memory with sodinn's ConvLSTM layer (one convolution
  per step), against the previous version of that layer (the K input convolutions at once) and the
  first path (Keras' ``ConvLSTM2D`` fed by batches read from the HDF5 file), and today's layer in
  mixed precision (``precision = "mixed_bfloat16"``: the convolutions in bfloat16, which oneDNN runs on
  AMX or AVX512-BF16 where the CPU has them; the bfloat16 matmul rate is printed beside); share of the matmul
  rate per wall-clock second (best pass) and per CPU second of this process (median), which does not
  depend on what else the machine runs; and inference of the same samples, each version of sodinn's
  layer as its prediction ran it (now ``predict_on_batch`` of 512 samples, before ``model.predict``);
- the result that matters: beta Pic b's rank in the candidate table and the number of candidates.

Where the Keras backend (``KERAS_BACKEND``) sees a GPU, the reference is that backend's float32 matmul
on the GPU (:class:`Reference`) and per-CPU-second shares are left out; ``bench/gpu/run.sh`` runs this
benchmark so on a GPU machine lent through the device tool (``bench/gpu/prepare.py`` packs what it needs),
and ``--data`` reads the sequence from a copy where ``../shared`` is not at hand.

Usage::

    .venv/bin/python bench/bench_pipeline.py [--runs 3] [--quick] [--output out/bench_pipeline]
    .venv/bin/python bench/bench_pipeline.py --step-only out/naco_betapic/samples.h5   # the training step only
    .venv/bin/python bench/bench_pipeline.py --runs 3 --precision mixed_bfloat16       # the pipeline, trained in bfloat16
    KERAS_BACKEND=jax .venv/bin/python bench/bench_pipeline.py --quick --data ../shared/data/naco_betapic  # another backend

``--quick`` (about 2 minutes) makes 40 samples per class and annulus and trains 2 epochs: a smoke
run of the harness, not a measurement of the defaults.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]  # this checkout's sodinn, as the stages' `python -m sodinn.cli` use

from bench_models import MATMUL_N, Pass, matmul_passes, matmul_rates, timed  # noqa: E402

BETA_PIC_B_XY = (62.0, 63.0)  # in the frames derotated with the file's angles alone (SPEC §8)
GPU_MATMUL_N = 8192  # the reference product on a GPU: large enough to keep its tensor cores busy


def backend_matmul_passes(repeat: int, *, n: int, dtype: str = "float32") -> list[Pass]:
    """Timed ``n x n`` products of ``dtype`` through ``keras.ops`` on the Keras backend's default device.

    On a GPU a backend returns before its product is done; reading one element back to the host
    waits for it, so each pass times the whole product (and one element's transfer).
    """
    import keras
    from keras import ops

    a = ops.cast(keras.random.normal((n, n), seed=0), dtype)

    def product() -> None:
        ops.convert_to_numpy(ops.matmul(a, a)[:1, :1])

    product()
    return [timed(product) for _ in range(repeat)]


@dataclass(frozen=True)
class Reference:
    """The float32 matrix product the percentages are of: numpy's BLAS on the CPU, or the Keras backend's on its GPU.

    ``gpu`` is True where the Keras backend (``KERAS_BACKEND``) sees a GPU: then the reference is an
    ``n x n`` float32 product through that backend on the GPU, with the backend's default float32
    matmul settings (JAX on NVIDIA GPUs may run float32 products on TF32 tensor cores; so may the
    model's convolutions), and per-CPU-second shares are not reported.
    """

    gpu: bool
    n: int

    @classmethod
    def detect(cls) -> Reference:
        from sodinn.learn.artifact import _has_gpu

        return cls(True, GPU_MATMUL_N) if _has_gpu() else cls(False, MATMUL_N)

    def passes(self, repeat: int) -> list[Pass]:
        if self.gpu:
            return backend_matmul_passes(repeat, n=self.n)
        return matmul_passes(repeat)

    def rates(self, passes: list[Pass]) -> tuple[float, float | None]:
        """Best FLOP/s, and best FLOP per CPU second (None on a GPU)."""
        rate, cpu_rate, _ = matmul_rates(passes, self.n)
        return rate, (None if self.gpu else cpu_rate)

    def describe(self) -> str:
        import keras

        where = "the GPU" if self.gpu else "the CPU"
        lib = f"keras.ops, {keras.backend.backend()}" if self.gpu else "numpy BLAS, all cores"
        return f"float32 {self.n}x{self.n} matmul on {where} ({lib})"


@dataclass(frozen=True)
class Stage:
    """One command: wall and CPU seconds, peak resident memory (GiB), its log."""

    name: str
    wall_s: float
    cpu_s: float
    maxrss_gib: float
    log: str


def run_stage(name: str, args: list[str], log_dir: Path) -> Stage:
    """Run ``python -m sodinn.cli NAME ARGS`` in a fresh process; raise if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sodinn.cli", name, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = proc.stdout + proc.stderr
    (log_dir / f"{name}.log").write_text(log)
    if proc.returncode != 0:
        msg = f"sodinn {name} failed ({proc.returncode}):\n{log[-3000:]}"
        raise RuntimeError(msg)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"  {log_dir.name}: {name} {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)  # progress, kept if a run is cut
    return Stage(name, wall, cpu, after.ru_maxrss / 2**20, log)


def model_flops(model) -> tuple[float, float]:
    """Forward FLOPs per sample of a Keras model, counted from its layers' shapes: (needed, as Keras computes them).

    ConvLSTM layers (sodinn's and ``keras.layers.ConvLSTM2D``): an input convolution
    ``C -> 4F`` at each of the K steps and a recurrent convolution ``F -> 4F`` at each step after
    the first ("needed": at the first step the state is 0; Keras' layer computes it anyway, counted
    in the second figure); Conv3D and Dense layers; 2 FLOPs per multiply-accumulate; pooling,
    activations and gates are not counted (they are O(1) per output, against O(9 C) for a
    convolution).
    """
    needed = keras_way = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "ConvLSTM2D":
            _, k, p, q, c = layer.input.shape
            f = layer.filters
            kh, kw = layer.kernel_size
            per_step = p * q * kh * kw * 4 * f
            needed += k * per_step * c + (k - 1) * per_step * f
            keras_way += k * per_step * (c + f)
        elif kind == "Conv3D":
            _, *out, f = layer.output.shape
            macs = int(np.prod(out)) * int(np.prod(layer.kernel_size)) * layer.input.shape[-1] * f
            needed += macs
            keras_way += macs
        elif kind == "Dense":
            macs = layer.input.shape[-1] * layer.units
            needed += macs
            keras_way += macs
    return 2.0 * needed, 2.0 * keras_way


def legacy_model(input_shape):
    """The previous ``sodinn`` network: the same layers with ``keras.layers.ConvLSTM2D`` (eight convolutions per step)."""
    import keras

    inputs = keras.Input(shape=input_shape)
    x = inputs
    for i in range(2):
        x = keras.layers.ConvLSTM2D(40, 3, padding="same", return_sequences=True, name=f"convlstm_{i + 1}")(x)
        x = keras.layers.MaxPooling3D(pool_size=(2, 2, 2))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.5)(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="probability")(x))


def previous_fused_model(input_shape):
    """The ``sodinn`` network with the previous version of sodinn's ConvLSTM layer (commit 0302d57).

    Same weights and layers; the layer convolved the K inputs at once outside the recurrence (one
    ``batch x K x P x P x 4F`` tensor, then sliced into steps) and added one ``F -> 4F`` recurrent
    convolution per step.
    """
    from keras import ops

    from sodinn.learn.models import build_model, fused_convlstm_class

    base = fused_convlstm_class()

    class ConvLSTM2D(base):  # the name model_flops counts
        def call(self, inputs):
            k, p, q, c = inputs.shape[1:]
            z = ops.conv(ops.reshape(inputs, (-1, p, q, c)), self.kernel, padding="same") + self.bias
            steps = ops.unstack(ops.reshape(z, (-1, k, p, q, 4 * self.filters)), num=k, axis=1)
            i, _, g, o = ops.split(steps[0], 4, axis=-1)
            cell = ops.sigmoid(i) * ops.tanh(g)
            outputs = [ops.sigmoid(o) * ops.tanh(cell)]
            for zt in steps[1:]:
                i, f, g, o = ops.split(zt + ops.conv(outputs[-1], self.recurrent_kernel, padding="same"), 4, axis=-1)
                cell = ops.sigmoid(f) * cell + ops.sigmoid(i) * ops.tanh(g)
                outputs.append(ops.sigmoid(o) * ops.tanh(cell))
            return ops.stack(outputs, axis=1)

    import sodinn.learn.models as models

    models.fused_convlstm_class = lambda: ConvLSTM2D
    try:
        return build_model("sodinn", input_shape)
    finally:
        models.fused_convlstm_class = fused_convlstm_class


def step_benchmark(samples: Path, *, n: int, batch: int, repeat: int, reference: Reference) -> tuple[list, list, int]:
    """Time one ``model.fit`` epoch of ``n`` training samples, and ``model.predict`` of them, path by path, interleaved.

    Returns the training paths ``(label, passes, flops_per_sample_trained, flops_per_sample_computed)``,
    the inference paths ``(label, passes, flops_per_sample)`` and the number of samples timed (``n``,
    or fewer where the file's training split has fewer whole batches), and keeps the matmul passes
    of ``reference`` measured between them in the module-level list ``MATMULS``.
    """
    import keras

    from sodinn._platform import native_bfloat16
    from sodinn.config import TrainConfig
    from sodinn.learn.artifact import keras_predict
    from sodinn.learn.models import build_model
    from sodinn.learn.training import group_split
    from sodinn.mlar.store import SampleFile

    with SampleFile(samples) as f:
        labels, groups, annulus, shape = f.labels.copy(), f.group.copy(), f.annulus.copy(), (*f.sample_shape, 1)
    cfg = TrainConfig()
    train_idx = group_split(groups, labels, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                            seed=cfg.seed, strata=annulus)[0]
    n = min(n, train_idx.size // batch * batch)
    # the first path's PyDataset: each batch read from the file, shuffled over the whole training set
    rng = np.random.default_rng(0)

    class FileBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.file = SampleFile(samples)

        def __len__(self) -> int:
            return n // batch

        def __getitem__(self, i):
            idx = np.sort(rng.choice(train_idx, batch, replace=False))
            return self.file.read(idx, normalize=True)[..., None], self.file.labels[idx].astype(np.float32)

    with SampleFile(samples) as f:
        chosen = np.sort(rng.choice(train_idx, n, replace=False))
        x, y = f.read(chosen, normalize=True)[..., None], f.labels[chosen].astype(np.float32)
    paths, inference = [], []
    bf16 = [("now, mixed_bfloat16: convolutions in bfloat16",
             lambda: build_model("sodinn", shape, precision="mixed_bfloat16"), None)]
    if not (reference.gpu or native_bfloat16()):
        print("(mixed_bfloat16 left out: this CPU emulates bfloat16, a training step about 13x slower than float32)")
        bf16 = []
    for label, build, data in (
        *bf16,
        ("now, float32: sodinn ConvLSTM, one conv per step", lambda: build_model("sodinn", shape), None),
        ("previous: K input convs at once (0302d57)", lambda: previous_fused_model(shape), None),
        ("first: keras ConvLSTM2D, batches from HDF5", lambda: legacy_model(shape), FileBatches()),
    ):
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(name="auc")])
        def fit(m=model, d=data):
            if d is None:
                return m.fit(x, y, batch_size=batch, epochs=1, shuffle=True, verbose=0)
            return m.fit(d, epochs=1, verbose=0)

        model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)  # trace and warm up
        needed, computed = model_flops(model)
        paths.append((label, fit, needed, computed))
        if data is None:  # inference as each version ran it: now predict_on_batch of 512, before model.predict (batch 32)
            infer = ((lambda m=model: keras_predict(m, x)) if label.startswith("now")
                     else (lambda m=model: m.predict(x, verbose=0)))
            infer()
            inference.append((label, infer, needed))
    results: dict[tuple[str, str], list] = {}
    for _ in range(repeat):  # interleaved: a change of load hits every path
        for kind, label, fn in [("train", p[0], p[1]) for p in paths] + [("infer", p[0], p[1]) for p in inference]:
            results.setdefault((kind, label), []).append(timed(fn))
            MATMULS.extend(reference.passes(2))
    return ([(label, results["train", label], needed, computed) for label, _, needed, computed in paths],
            [(label, results["infer", label], needed) for label, _, needed in inference], n)


MATMULS: list = []


def bfloat16_matmul_rate(n: int, repeat: int = 5) -> float:
    """Best FLOP/s of an ``n x n`` bfloat16 matrix product through the Keras backend (on TensorFlow's CPU: oneDNN,
    AMX or AVX512-BF16 where the CPU has them)."""
    return 2 * n**3 / min(p.wall for p in backend_matmul_passes(repeat, n=n, dtype="bfloat16"))


def candidate_rank(predict_dir: Path, fwhm_px: float) -> tuple[int | None, int]:
    """Rank (1 = first row) of the candidate within 1 FWHM of beta Pic b, and the number of candidates."""
    from astropy.table import Table

    table = Table.read(predict_dir / "candidates.ecsv")
    xcol = next(c for c in ("x", "x_px") if c in table.colnames)
    ycol = next(c for c in ("y", "y_px") if c in table.colnames)
    dist = np.hypot(np.asarray(table[xcol]) - BETA_PIC_B_XY[0], np.asarray(table[ycol]) - BETA_PIC_B_XY[1])
    hits = np.nonzero(dist <= fwhm_px)[0]
    return (int(hits[0]) + 1 if hits.size else None), len(table)


def training_rate(model_dir: Path, wall_s: float, cpu_s: float) -> dict[str, float]:
    """FLOP/s of the training stage from its history and split (3x forward per training sample per epoch)."""
    import keras

    from sodinn.learn.artifact import load_trained

    meta = json.loads((model_dir / "model.json").read_text())
    split = meta["metrics"]["split"]
    with open(model_dir / "history.csv") as fh:
        epochs = sum(1 for _ in csv.DictReader(fh))
    model = load_trained(model_dir).model
    needed, _ = model_flops(model)
    flops = needed * (epochs * (3 * split["train"] + split["val"]) + split["test"])
    del keras
    return {"epochs": epochs, "train": split["train"], "flops": flops, "per_wall_s": flops / wall_s, "per_cpu_s": flops / cpu_s}


def predict_stage_lines(log: str) -> list[str]:
    """Lines of predict's log that report a duration in seconds (its stages, where it logs them)."""
    import re

    duration = re.compile(r"\d(\.\d+)?\s?(s|seconds)\b")
    return [line.strip() for line in log.splitlines() if duration.search(line) and not line.lstrip().startswith("#")]


def data_flags(data_dir: str | None) -> list[str]:
    """``--cube``/``--angles``/``--psf`` flags for a folder holding cube.fits, angles.fits and psf.fits (none without one)."""
    if data_dir is None:
        return []
    folder = Path(data_dir).resolve()
    return [arg for name in ("cube", "angles", "psf") for arg in (f"--{name}", str(folder / f"{name}.fits"))]


def one_run(args, out: Path, reference: Reference) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config = str(Path(args.config).resolve())
    samples_flags = ["--per-annulus", "40"] if args.quick else []
    train_flags = (["--epochs", "2"] if args.quick else []) + (["--precision", args.precision] if args.precision else [])
    data = data_flags(args.data)
    mm_before = reference.passes(3)
    stages = [run_stage("samples", ["--config", config, *data, "--output", str(out / "samples.h5"), "--no-resume",
                                    *samples_flags], out)]
    MATMULS.extend(mm_before)
    stages.append(run_stage("train", ["--config", config, str(out / "samples.h5"), "--output", str(out / "model"),
                                      "--no-resume", *train_flags], out))
    mm_after = reference.passes(3)
    MATMULS.extend(mm_after)
    stages.append(run_stage("predict", ["--config", config, *data, str(out / "model"), "--output", str(out / "predict")],
                            out))
    fwhm = json.loads((out / "model" / "model.json").read_text()).get("fwhm_px", 4.8)
    rank, n_cand = candidate_rank(out / "predict", float(fwhm) if isinstance(fwhm, (int, float)) else 4.8)
    rate, cpu_rate = reference.rates(mm_before + mm_after)
    train = stages[1]
    tr = training_rate(out / "model", train.wall_s, train.cpu_s)
    return {"stages": stages, "rank": rank, "n_candidates": n_cand, "train_rate": tr, "matmul": (rate, cpu_rate)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "naco_betapic.toml"))
    parser.add_argument("--output", default=str(REPO / "out" / "bench_pipeline"), help="scratch folder (remade)")
    parser.add_argument("--runs", type=int, default=1, help="cold-start runs of the whole pipeline")
    parser.add_argument("--quick", action="store_true", help="40 samples per class and annulus, 2 epochs (smoke run)")
    parser.add_argument("--precision", help="train with this precision instead of the configuration's (float32, "
                        "mixed_bfloat16)")
    parser.add_argument("--step-samples", type=int, default=512, help="training samples per timed fit pass")
    parser.add_argument("--step-repeat", type=int, default=3, help="timed passes per path")
    parser.add_argument("--no-step", dest="step", action="store_false", help="skip the side-by-side training step")
    parser.add_argument("--step-only", metavar="SAMPLES", help="only the side-by-side training step, on this sample file")
    parser.add_argument("--data", metavar="DIR", help="read cube.fits, angles.fits and psf.fits from DIR instead of the "
                        "configuration's [data] paths (a copy of ../shared/data/naco_betapic, on a machine without it)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    reference = Reference.detect()
    if args.step_only:
        print_step(args, Path(args.step_only), reference)
        return 0

    runs = [one_run(args, out / f"run{i + 1}", reference) for i in range(args.runs)]
    print(f"{os.cpu_count()} CPU cores, load average now {', '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"{backend_line(reference)}; config {Path(args.config).name}{' (--quick)' if args.quick else ''}"
          f"{' --precision ' + args.precision if args.precision else ''}; {args.runs} cold-start run(s)")
    print(f"{'stage':8s} " + " ".join(f"{'run ' + str(i + 1) + ' wall / CPU s':>22s}" for i in range(len(runs)))
          + f" {'median wall':>12s}  peak GiB")
    for j, name in enumerate(("samples", "train", "predict")):
        walls = [r["stages"][j].wall_s for r in runs]
        cells = " ".join(f"{r['stages'][j].wall_s:10.1f} / {r['stages'][j].cpu_s:9.1f}" for r in runs)
        print(f"{name:8s} {cells} {statistics.median(walls):12.1f}  {max(r['stages'][j].maxrss_gib for r in runs):.2f}")
    totals = [sum(s.wall_s for s in r["stages"]) for r in runs]
    print(f"{'total':8s} " + " ".join(f"{t:10.1f} / {sum(s.cpu_s for s in r['stages']):9.1f}" for t, r in zip(totals, runs))
          + f" {statistics.median(totals):12.1f}   ({statistics.median(totals) / 60:.1f} min)")
    for i, r in enumerate(runs):
        tr, (rate, cpu_rate) = r["train_rate"], r["matmul"]
        per_cpu = (f", {100 * tr['per_cpu_s'] / cpu_rate:.0f}% per CPU s ({cpu_rate / 1e9:.0f} GFLOP per CPU s)"
                   if cpu_rate else "")
        print(f"run {i + 1}: beta Pic b rank {r['rank']} of {r['n_candidates']} candidates; training {tr['epochs']} epochs "
              f"of {tr['train']} samples, {tr['flops'] / 1e12:.1f} TFLOP: {100 * tr['per_wall_s'] / rate:.0f}% of the "
              f"{reference.describe()} per wall s ({rate / 1e9:.0f} GFLOP/s){per_cpu}; the whole stage, Keras import, "
              "evaluation and saving included")
        for line in predict_stage_lines(r["stages"][2].log):
            print(f"    predict: {line}")
    if args.step:
        print_step(args, out / "run1" / "samples.h5", reference)
    return 0


def backend_line(reference: Reference) -> str:
    """The Keras backend, its version and the device it computes on (the GPUs it lists where ``reference`` found one)."""
    import importlib.metadata

    import keras

    name = keras.backend.backend()
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    devices = ", ".join(str(d) for d in keras.distribution.list_devices()) if reference.gpu else "CPU"
    return f"Keras {keras.__version__}, backend {name} {version} on {devices}"


def print_step(args, samples: Path, reference: Reference) -> None:
    from sodinn.learn.artifact import PREDICT_BATCH

    paths, inference, n = step_benchmark(samples, n=args.step_samples, batch=128, repeat=args.step_repeat,
                                         reference=reference)
    rate, cpu_rate = reference.rates(MATMULS)
    per_cpu = f", {cpu_rate / 1e9:.0f} GFLOP per CPU s" if cpu_rate else ""
    print(f"\n{backend_line(reference)}")
    print(f"training step, {args.step_repeat} interleaved passes of one model.fit epoch of {n} samples, "
          f"batch 128; {reference.describe()} {rate / 1e9:.0f} GFLOP/s{per_cpu} (best of {len(MATMULS)})")
    header = f"{'path':48s} {'GFLOP/sample':>12s} {'best wall s':>11s} {'% matmul':>9s} {'% per CPU s':>12s} {'cores':>6s} {'others':>6s}"
    print(header)
    for label, passes, needed, _ in paths:
        print(_step_row(label, passes, n, 3 * needed, rate, cpu_rate))
    print("(FLOPs: 3x the forward FLOPs the model needs, the first step's recurrent convolution of a zero state left out;"
          " Keras' ConvLSTM2D computes it too: "
          f"{3 * paths[-1][3] / 1e9:.3f} GFLOP per sample)")
    bf16 = bfloat16_matmul_rate(reference.n)
    where = "this GPU's" if reference.gpu else "this CPU's"
    print(f"(the percentages are of the float32 matmul, the issue's reference; {where} bfloat16 matmul through the "
          f"Keras backend runs at {bf16 / 1e9:.0f} GFLOP/s, {bf16 / rate:.1f}x it)")
    print(f"\ninference, the same passes, of the {n} samples: now predict_on_batch of {PREDICT_BATCH} at a time "
          "(sodinn.learn.artifact.keras_predict), previously model.predict (its default batch, 32)")
    print(header)
    for label, passes, needed in inference:
        print(_step_row(label, passes, n, needed, rate, cpu_rate))


def _step_row(label: str, passes: list, n: int, flops_per_sample: float, rate: float, cpu_rate: float | None) -> str:
    """One row: best wall-clock pass and median per CPU second as shares of the matmul rates, cores used."""
    best = min(p.wall for p in passes)
    if cpu_rate:
        per_cpu = f"{100 * statistics.median(n * flops_per_sample / p.own_cpu for p in passes) / cpu_rate:11.0f}%"
    else:
        per_cpu = f"{'-':>12s}"  # a GPU's work is not this process's CPU time
    cores = statistics.median(p.own_cpu / p.wall for p in passes)
    others_c = statistics.median(p.others_cores for p in passes)
    return (f"{label:48s} {flops_per_sample / 1e9:12.3f} {best:11.2f} {100 * n * flops_per_sample / best / rate:8.0f}% "
            f"{per_cpu} {cores:6.2f} {others_c:6.2f}")


if __name__ == "__main__":
    sys.exit(main())
