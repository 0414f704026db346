"""Speed of the SODINN networks on this machine: training and inference samples/s at K=20, P=11,
FLOPs per sample, and achieved FLOP/s against the float32 matrix-multiply rate measured in the same run.

    .venv/bin/python bench/bench_models.py [--models sodinn sodinn-v2] [--n 1024] [--batch 128] [--repeat 5]

On a shared machine the wall-clock speed depends on what else runs: every timed pass also records
the CPU time this process got and the CPU time the other processes used meanwhile (Linux
/proc/stat), and the efficiency is reported both per wall-clock second (against the matmul rate on
all cores) and per CPU second of this process (against the matmul's FLOPs per CPU second), which
does not depend on how many cores the other processes left us. A pass during which the other
processes used more than ``--quiet-cores`` cores is "contended"; the headline figures are the best
of the quiet passes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def convlstm_macs(steps: int, size: int, c_in: int, filters: int, kernel: int) -> int:
    """Multiply-accumulates of one ConvLSTM2D layer ('same' padding) for one sample."""
    return steps * size * size * kernel * kernel * 4 * filters * (c_in + filters)


def model_flops(name: str, k: int = 20, p: int = 11) -> int:
    """Forward FLOPs (2 x MACs) per sample of the registered ConvLSTM models."""
    f1, f2, k2 = (40, 40, 3) if name == "sodinn" else (40, 80, 2)
    macs = convlstm_macs(k, p, 1, f1, 3) + convlstm_macs(k // 2, p // 2, f1, f2, k2)
    flat = (k // 4) * (p // 4) * (p // 4) * f2
    macs += flat * 128 + 128
    return 2 * macs


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (Linux), NaN elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Pass:
    """One timed call: wall seconds, CPU seconds of this process, CPU seconds of the others."""

    wall: float
    own_cpu: float
    others_cpu: float

    @property
    def others_cores(self) -> float:
        return self.others_cpu / self.wall


def timed(fn: Callable[[], object]) -> Pass:
    w0, c0, b0 = time.perf_counter(), _cpu_seconds(), _machine_busy_seconds()
    fn()
    wall, own = time.perf_counter() - w0, _cpu_seconds() - c0
    return Pass(wall, own, max(_machine_busy_seconds() - b0 - own, 0.0))


MATMUL_N = 2048


def matmul_passes(repeat: int = 5) -> list[Pass]:
    """Timed float32 ``MATMUL_N`` x ``MATMUL_N`` products (numpy BLAS, all cores)."""
    a = np.random.default_rng(0).standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32)
    b = a.T.copy()
    a @ b
    return [timed(lambda: a @ b) for _ in range(repeat)]


def matmul_rates(passes: list[Pass], n: int = MATMUL_N) -> tuple[float, float, float]:
    """Best FLOP/s, best FLOP per CPU second, and the cores the others used during the fastest pass (``n x n`` products)."""
    flops = 2 * n**3
    best = min(passes, key=lambda p: p.wall)
    return flops / best.wall, flops / min(p.own_cpu for p in passes), best.others_cores


@dataclass(frozen=True)
class Figures:
    """Summary of the passes of one measurement."""

    quiet_best: float | None  # samples/s, best quiet pass
    median: float  # samples/s, all passes
    cpu_efficiency: float  # FLOP per CPU second / matmul FLOP per CPU second (median over passes)
    n_contended: int
    own_cores: tuple[float, ...]
    others_cores: tuple[float, ...]


def summarize(passes: list[Pass], n: int, flops: float, cpu_rate: float, quiet_cores: float) -> Figures:
    quiet = [p for p in passes if p.others_cores <= quiet_cores]
    return Figures(
        quiet_best=n / min(p.wall for p in quiet) if quiet else None,
        median=n / float(np.median([p.wall for p in passes])),
        cpu_efficiency=float(np.median([n * flops / p.own_cpu for p in passes])) / cpu_rate,
        n_contended=len(passes) - len(quiet),
        own_cores=tuple(p.own_cpu / p.wall for p in passes),
        others_cores=tuple(p.others_cores for p in passes),
    )


def _raw_train_epoch(model, x: np.ndarray, y: np.ndarray, batch: int) -> Callable[[], object]:
    """One epoch of the same training steps as ``model.fit`` (loss, gradients, Adam) in a plain
    ``tf.function``, without Keras' epoch loop and data iterator: separates the model's cost from the trainer's."""
    import tensorflow as tf

    xt, yt = tf.constant(x), tf.constant(y)

    @tf.function
    def step(a, b):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=a, y=b, y_pred=model(a, training=True))
        model.optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    def epoch() -> float:
        for i in range(0, len(x) - batch + 1, batch):
            step(xt[i : i + batch], yt[i : i + batch])
        return float(model.optimizer.iterations.numpy())

    return epoch


def _fmt(samples_per_s: float | None, flops: float, rate: float) -> str:
    if samples_per_s is None:
        return f"{'n/a':>6s} {'':>5s}"
    return f"{samples_per_s:6.0f} {100 * samples_per_s * flops / rate:4.0f}%"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["sodinn", "sodinn-v2"])
    parser.add_argument("--n", type=int, default=1024, help="samples per timed pass")
    parser.add_argument("--batch", type=int, default=128, help="training batch size")
    parser.add_argument("--infer-batch", type=int, default=512, help="inference batch size")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per figure")
    parser.add_argument("--quiet-cores", type=float, default=0.15,
                        help="a pass is contended when the other processes used more cores than this")
    parser.add_argument("--no-raw-step", dest="raw_step", action="store_false",
                        help="skip the training epoch in a plain tf.function (TensorFlow backend only)")
    args = parser.parse_args(argv)

    import keras

    from sodinn.learn.models import build_model

    args.raw_step = args.raw_step and keras.backend.backend() == "tensorflow"

    rng = np.random.default_rng(0)
    x = rng.random((args.n, 20, 11, 11, 1), dtype=np.float32)
    y = (rng.random(args.n) > 0.5).astype(np.float32)
    # the matmul reference is measured before and after every model, and its best pass kept
    matmuls = matmul_passes()
    measured = []
    for name in args.models:
        keras.utils.set_random_seed(0)
        model = build_model(name, (20, 11, 11, 1))
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.predict(x[: args.infer_batch], batch_size=args.infer_batch, verbose=0)
        inf = [timed(lambda m=model: m.predict(x, batch_size=args.infer_batch, verbose=0)) for _ in range(args.repeat)]
        matmuls += matmul_passes()
        model.fit(x[: args.batch], y[: args.batch], batch_size=args.batch, epochs=1, verbose=0)
        trn = [timed(lambda m=model: m.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)) for _ in range(args.repeat)]
        matmuls += matmul_passes()
        raw = [timed(step) for step in [_raw_train_epoch(model, x, y, args.batch)] * (args.repeat + 1)][1:] if args.raw_step else []
        measured.append((name, inf, trn, raw))

    rate, cpu_rate, others = matmul_rates(matmuls)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} CPU cores, load average {load}")
    print(f"float32 matmul ({MATMUL_N}x{MATMUL_N}, numpy BLAS, best of {len(matmuls)} passes spread over the run): "
          f"{rate / 1e9:.1f} GFLOP/s on all cores (others used {others:.2f} cores meanwhile), "
          f"{cpu_rate / 1e9:.1f} GFLOP per CPU second")
    print(f"{args.repeat} passes of {args.n} samples; inference batch {args.infer_batch} (model.predict), "
          f"training batch {args.batch} (model.fit, FLOPs counted as 3x forward)")
    print("samples/s and % of the matmul rate: best quiet pass | median of all passes; "
          "per CPU s: % of the matmul's FLOPs per CPU second")
    print(f"{'model':10s} {'GFLOP':>6s} | {'inference: quiet':>16s} {'median':>12s} {'per CPU s':>9s} "
          f"| {'training: quiet':>15s} {'median':>12s} {'per CPU s':>9s} | contended passes")
    rows = []
    for name, inf, trn, raw in measured:
        flops = model_flops(name)
        fi = summarize(inf, args.n, flops, cpu_rate, args.quiet_cores)
        ft = summarize(trn, args.n, 3 * flops, cpu_rate, args.quiet_cores)
        fr = summarize(raw, args.n, 3 * flops, cpu_rate, args.quiet_cores) if raw else None
        rows.append((name, fi, ft, fr))
        print(f"{name:10s} {flops / 1e9:6.3f} | {_fmt(fi.quiet_best, flops, rate):>16s} {_fmt(fi.median, flops, rate):>12s} "
              f"{100 * fi.cpu_efficiency:8.0f}% | {_fmt(ft.quiet_best, 3 * flops, rate):>15s} "
              f"{_fmt(ft.median, 3 * flops, rate):>12s} {100 * ft.cpu_efficiency:8.0f}% | "
              f"{fi.n_contended + ft.n_contended} of {2 * args.repeat}")
        if fr is not None:
            print(f"{'':10s} {'':6s} | {'training, own tf.function step:':>39s} {_fmt(fr.quiet_best, 3 * flops, rate):>15s} "
                  f"{_fmt(fr.median, 3 * flops, rate):>12s} {100 * fr.cpu_efficiency:8.0f}% | {fr.n_contended} of {args.repeat}")
    print("\nper pass, cores used by this process / by the others:")
    for name, fi, ft, fr in rows:
        for label, f in (("inference", fi), ("training", ft), ("raw step", fr)):
            if f is None:
                continue
            cores = "  ".join(f"{o:.2f}/{t:.2f}" for o, t in zip(f.own_cores, f.others_cores))
            print(f"  {name:10s} {label:9s} {cores}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
