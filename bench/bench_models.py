"""Speed of the SODINN networks on this machine: training and inference samples/s at K=20, P=11,
FLOPs per sample, and achieved FLOP/s against the float32 matrix-multiply rate measured in the same run.

    .venv/bin/python bench/bench_models.py [--models sodinn sodinn-v2] [--n 1024] [--batch 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

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


def matmul_rate(n: int = 2048, repeat: int = 5) -> float:
    """float32 matrix-multiply FLOP/s of this machine (numpy / BLAS, all cores), best of ``repeat``."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeat))
    return 2 * n**3 / best


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["sodinn", "sodinn-v2"])
    parser.add_argument("--n", type=int, default=1024, help="samples per timing")
    parser.add_argument("--batch", type=int, default=128, help="training batch size")
    parser.add_argument("--infer-batch", type=int, default=512, help="inference batch size")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (median and best reported)")
    args = parser.parse_args(argv)

    import keras

    from sodinn.models import build_model

    rate = matmul_rate()
    print(f"keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} CPU cores; "
          f"float32 matmul rate {rate / 1e9:.1f} GFLOP/s (2048x2048, numpy BLAS)")
    rng = np.random.default_rng(0)
    x = rng.random((args.n, 20, 11, 11, 1), dtype=np.float32)
    y = (rng.random(args.n) > 0.5).astype(np.float32)
    print(f"inference batch {args.infer_batch}, training batch {args.batch}; median (best) of {args.repeat} runs of {args.n} samples")
    print(f"{'model':10s} {'GFLOP/sample':>12s} {'infer/s':>13s} {'infer % peak':>14s} {'train/s':>13s} {'train % peak':>14s}")
    for name in args.models:
        keras.utils.set_random_seed(0)
        model = build_model(name, (20, 11, 11, 1))
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.predict(x[: args.infer_batch], batch_size=args.infer_batch, verbose=0)
        t_inf = [_time(lambda m=model: m.predict(x, batch_size=args.infer_batch, verbose=0)) for _ in range(args.repeat)]
        model.fit(x[: args.batch], y[: args.batch], batch_size=args.batch, epochs=1, verbose=0)
        t_train = [_time(lambda m=model: m.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)) for _ in range(args.repeat)]
        flops = model_flops(name)
        inf = (args.n / np.median(t_inf), args.n / min(t_inf))
        trn = (args.n / np.median(t_train), args.n / min(t_train))
        print(f"{name:10s} {flops / 1e9:12.3f} {inf[0]:7.0f} ({inf[1]:3.0f}) {100 * inf[0] * flops / rate:6.1f}% "
              f"({100 * inf[1] * flops / rate:3.0f}%) {trn[0]:7.0f} ({trn[1]:3.0f}) {100 * trn[0] * 3 * flops / rate:6.1f}% "
              f"({100 * trn[1] * 3 * flops / rate:3.0f}%)")
    print("training FLOPs counted as 3x forward (forward + backward)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
