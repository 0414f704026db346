#!/usr/bin/env bash
# The default NACO pipeline benchmark (bench/bench_pipeline.py) on a GPU machine, with a Keras backend that
# uses the GPU (issue 16). Prepared here by `.venv/bin/python bench/gpu/prepare.py` (wheels and data in .device/),
# then run there through the device tool, from the repository root:
#     run(command="bash bench/gpu/run.sh", carry=[".device"], timeout_s=570)
# It installs the carried wheels into /tmp/site, picks the first backend of $BACKENDS (default: jax torch) that
# sees the GPU and trains one batch of the sodinn network on it, then runs $RUNS (default 3) cold-start runs of
# samples -> train -> predict (self-calibrated) and the training-step / inference table, within $BUDGET_S seconds
# (default 540) of its start. Everything it prints goes to $OUT/bench_pipeline_gpu.txt; the stages' own logs
# to $OUT/stage_logs.tgz. The percentages are of the GPU's float32 matmul through the same backend, measured in
# the same run (bench_pipeline.Reference). $BENCH_ARGS adds flags of bench_pipeline.py (e.g. "--precision
# mixed_bfloat16", or "--quick"); REQUIRE_GPU=0 lets it run on a CPU (a dry run of the script).
set -uo pipefail
start=$(date +%s)
budget=${BUDGET_S:-540}
OUT=${OUT:-/tmp/gpu_bench_out}
mkdir -p "$OUT"
log="$OUT/bench_pipeline_gpu.txt"
work=/tmp/bench_pipeline_gpu
say() { echo "$*" | tee -a "$log"; }

[ -d .device/wheels ] && [ -f .device/data/cube.fits ] || { say "no .device/: run bench/gpu/prepare.py here and carry .device"; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/wheels/*.whl \
    || { say "installing the carried wheels failed"; exit 3; }
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # the benchmark's process and each stage's share the GPU
say "$(date -u '+%F %T') UTC; git $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(nproc) CPU cores"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$log"

backend=""
for b in ${BACKENDS:-jax torch}; do
    if KERAS_BACKEND=$b timeout 150 python3 - >>"$log" 2>&1 <<'PY'
import os
import time

import keras
import numpy as np

from sodinn.learn.artifact import _has_gpu
from sodinn.learn.models import build_model

if os.environ.get("REQUIRE_GPU", "1") != "0":  # REQUIRE_GPU=0: a dry run of this script on a CPU
    assert _has_gpu(), f"Keras' {keras.backend.backend()} backend sees no GPU: {keras.distribution.list_devices()}"
model = build_model("sodinn", (20, 11, 11, 1))
model.compile(optimizer="adam", loss="binary_crossentropy")
x = np.random.default_rng(0).standard_normal((128, 20, 11, 11, 1)).astype("float32")
y = (np.arange(128) % 2).astype("float32")
t0 = time.perf_counter()
loss = model.train_on_batch(x, y)
print(f"smoke: {keras.backend.backend()} trains one batch of 128 on {keras.distribution.list_devices()} "
      f"in {time.perf_counter() - t0:.1f} s (compilation included), loss {float(np.ravel(loss)[0]):.3f}")
PY
    then backend=$b; break; fi
    say "backend $b: no GPU training (its output above); trying the next"
done
[ -n "$backend" ] || { say "no Keras backend trained on the GPU"; exit 4; }

left=$(( budget - ($(date +%s) - start) - 15 ))
say "KERAS_BACKEND=$backend; ${left} s left for bench_pipeline.py --runs ${RUNS:-3}"
KERAS_BACKEND=$backend timeout "$left" python3 bench/bench_pipeline.py --data .device/data --runs "${RUNS:-3}" \
    --step-samples "${STEP_SAMPLES:-4096}" --output "$work" ${BENCH_ARGS:-} 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
[ "$status" = 124 ] && say "bench_pipeline.py stopped at the budget of $budget s (BUDGET_S); what it printed is above"
tar -czf "$OUT/stage_logs.tgz" -C "$work" $(cd "$work" 2>/dev/null && ls -d run*/*.log 2>/dev/null) 2>/dev/null
exit "$status"
