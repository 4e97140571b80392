#!/usr/bin/env bash
# The ONE prepared device check for the GPU (issue 7) and descent.compile on CuPy (issue 17):
# about 7 minutes in all, so that a 15-minute device lease leaves time for one short rerun.
#
#   1. tests/test_gpu.py (fused kernels vs NumPy references, op table on CuPy, fused vs generic
#      vs CPU, optimizers, RNG, checkpoints, GPT curve, CLI, autocast), strict kernels,
#      pytest-xdist over 8 workers                                            <= 180 s
#   2. descent.compile on CuPy (tests/test_gpu_compile.py) and the test files whose `xp`
#      fixture adds CuPy (DESCENT_TEST_DEVICE=cuda: a missing GPU is an error, not a skip) <= 90 s
#   3. benchmarks/gpu.py: ms/iteration of descent (eager, unfused, compiled) vs PyTorch eager
#      and torch.compile, float32 and mixed precision, then a time-boxed shakespeare-char
#      training curve (GPU_TRAIN=0: none)                                     <= GPU_BENCH_BUDGET s
#   4. benchmarks/gpu_profile.py: host vs synchronised time of the float32 step, cProfile  <= 60 s
#
# GPU_TESTS=0 / GPU_BENCH=0 / GPU_PROFILE=0 skip parts; GPU_PROFILE_ARGS=--kernels lists the
# GPU kernels; GPU_EXTRA_TESTS="tests/test_x.py ..." adds files to part 2
# (for a rerun after a fix). Everything is written under $OUT (at most 8 files come back from
# the device tool); the summary is printed last, so the tool's output tail holds it.
#
# Before calling the device tool (once, in the repository root, on the development machine):
#   mkdir -p .gpu_data && cp ../shared/data/tinyshakespeare.txt .gpu_data/
#   grep -qx '/.gpu_data/' .git/info/exclude || echo '/.gpu_data/' >> .git/info/exclude
# then run:   command: bash scripts/gpu_check.sh     carry: [".gpu_data"]     timeout_s: 520
# Nothing is installed: CuPy, PyTorch, NumPy, safetensors, ml_dtypes, numba, tqdm, pytest and
# pytest-xdist are on the image; descent comes from src/ on PYTHONPATH.
set -u
OUT=${OUT:-/tmp/descent_gpu_out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }
XDIST=(-n 8)
"$PY" -c "import xdist" 2>/dev/null || XDIST=()
RC_GPU=- RC_XP=- RC_BENCH=-

{
    echo "== environment ($(date -u))"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1
    "$PY" - <<'PYEOF'
import platform, numpy, cupy, torch
print("python", platform.python_version(), "| numpy", numpy.__version__, "| cupy", cupy.__version__,
      "| torch", torch.__version__, "| cuda devices (cupy)", cupy.cuda.runtime.getDeviceCount())
for mod in ("ml_dtypes", "numba", "safetensors", "xdist"):
    try:
        print(mod, __import__(mod).__version__ if hasattr(__import__(mod), "__version__") else "ok")
    except ImportError:
        print(mod, "NOT INSTALLED")
import descent
print("descent from", descent.__file__, "| cuda available:", descent.cuda.is_available())
PYEOF
    ls -l .gpu_data 2>&1 | head -3
} 2>&1 | tee "$OUT/env.txt"

if [ "${GPU_TESTS:-1}" = 1 ]; then
    echo "== [$(elapsed) s] 1. tests/test_gpu.py"
    DESCENT_TEST_DEVICE=cuda DESCENT_FUSED_STRICT=1 timeout 180 \
        "$PY" -m pytest tests/test_gpu.py -p no:cacheprovider "${XDIST[@]}" -rfE -q \
        >"$OUT/test_gpu.log" 2>&1
    RC_GPU=$?
    tail -n 1 "$OUT/test_gpu.log"

    echo "== [$(elapsed) s] 2. descent.compile on CuPy + the xp-fixture files"
    DESCENT_TEST_DEVICE=cuda DESCENT_FUSED_STRICT=1 timeout 90 \
        "$PY" -m pytest tests/test_gpu_compile.py tests/test_compile_cuda_fusion.py \
        tests/test_cross_entropy_kernel.py tests/test_engine.py tests/test_nn_layers.py \
        ${GPU_EXTRA_TESTS:-} -p no:cacheprovider "${XDIST[@]}" -rfE -q >"$OUT/test_xp.log" 2>&1
    RC_XP=$?
    tail -n 1 "$OUT/test_xp.log"
fi

if [ "${GPU_BENCH:-1}" = 1 ]; then
    BUDGET=${GPU_BENCH_BUDGET:-170}
    echo "== [$(elapsed) s] 3. benchmarks/gpu.py (budget $BUDGET s)"
    TRAIN=()
    [ "${GPU_TRAIN:-1}" = 1 ] || TRAIN=(--no-train)
    timeout $((BUDGET + 40)) "$PY" benchmarks/gpu.py --budget "$BUDGET" "${TRAIN[@]}" \
        --train-reserve "${GPU_TRAIN_RESERVE:-60}" --out "$OUT" >"$OUT/bench.log" 2>&1
    RC_BENCH=$?
fi

if [ "${GPU_PROFILE:-1}" = 1 ]; then
    echo "== [$(elapsed) s] 4. benchmarks/gpu_profile.py (host time, cProfile of the float32 step)"
    timeout 60 "$PY" benchmarks/gpu_profile.py --iters 10 --top 25 ${GPU_PROFILE_ARGS:-} >"$OUT/profile.log" 2>&1
    timeout 60 "$PY" benchmarks/gpu_profile.py --iters 10 --top 25 --dtype float16 ${GPU_PROFILE_ARGS:-} \
        >>"$OUT/profile.log" 2>&1
    grep "ms/iteration" "$OUT/profile.log"
fi

{
    echo "== summary [$(elapsed) s]: test_gpu rc=$RC_GPU, xp/compile rc=$RC_XP, bench rc=$RC_BENCH"
    for f in test_gpu test_xp; do
        [ -f "$OUT/$f.log" ] || continue
        echo "-- $f: $(tail -n 1 "$OUT/$f.log")"
        grep -E "^(FAILED|ERROR)" "$OUT/$f.log" | cut -c1-300 | head -n 40
    done
    if [ -f "$OUT/profile.log" ]; then
        echo "-- profile:"; grep "ms/iteration" "$OUT/profile.log"
        grep -A 12 "ncalls" "$OUT/profile.log" | cut -c1-150
        grep -A 25 "^GPU kernels" "$OUT/profile.log" | cut -c1-150
    fi
    if [ -f "$OUT/bench.log" ]; then
        echo "-- bench:"; grep -vE "^  iter " "$OUT/bench.log" | cut -c1-600 | tail -n 30
        echo "-- training curve (every 2nd evaluation):"
        grep -E "^  iter " "$OUT/bench.log" | awk 'NR % 2 == 1' | tail -n 12
    fi
} 2>&1 | tee "$OUT/summary.txt"
exit 0
