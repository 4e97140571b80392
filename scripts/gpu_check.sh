#!/usr/bin/env bash
# The ONE prepared device check for issue 7 (GPU through CuPy): about 9 minutes in all.
#
#   1. the GPU test file (fused kernels vs NumPy references, op table on CuPy, fused vs generic
#      vs CPU, optimizers, RNG, checkpoints, GPT curve, CLI, autocast)       <= 170 s
#   2. the whole suite with DESCENT_TEST_DEVICE=cuda (the xp fixture adds CuPy; a missing GPU is
#      an error, not a skip), in parallel with pytest-xdist                  <= 110 s
#      (without test_distributed.py and test_explain_html.py: mpirun and headless Chromium are
#      CPU-side tools the device image may lack; they do not touch the GPU)
#   3. benchmarks/gpu.py: ms/iteration descent vs PyTorch eager/torch.compile, float32 and
#      mixed precision, then a time-boxed shakespeare-char training curve    <= 250 s
#
# Everything is written under $OUT (at most 8 files come back from the device tool); the
# summary is printed last, so the tool's output tail holds it.
#
# Before calling the device tool (once, in the repository root, on the development machine):
#   mkdir -p .gpu_data && cp ../shared/data/tinyshakespeare.txt .gpu_data/
#   grep -qx '/.gpu_data/' .git/info/exclude || echo '/.gpu_data/' >> .git/info/exclude
# then run:   command: bash scripts/gpu_check.sh     carry: [".gpu_data"]     timeout_s: 590
# Nothing is installed: CuPy, PyTorch, NumPy, safetensors, tqdm and pytest are on the image;
# descent comes from src/ on PYTHONPATH.
set -u
OUT=${OUT:-/tmp/descent_gpu_out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }

{
    echo "== environment ($(date -u))"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1
    "$PY" - <<'EOF'
import platform, numpy, cupy, torch
print("python", platform.python_version(), "| numpy", numpy.__version__, "| cupy", cupy.__version__,
      "| torch", torch.__version__, "| cuda devices (cupy)", cupy.cuda.runtime.getDeviceCount())
try:
    import ml_dtypes
    print("ml_dtypes", ml_dtypes.__version__, "(bfloat16 available to CuPy)")
except ImportError:
    print("ml_dtypes: not installed (bfloat16 autocast unavailable)")
import descent
print("descent from", descent.__file__, "| cuda available:", descent.cuda.is_available())
EOF
    ls -l .gpu_data 2>&1 | head -3
} 2>&1 | tee "$OUT/env.txt"

echo "== [$(elapsed) s] 1. tests/test_gpu.py"
DESCENT_TEST_DEVICE=cuda DESCENT_FUSED_STRICT=1 timeout 170 \
    "$PY" -m pytest tests/test_gpu.py -v -p no:cacheprovider --timeout 90 -rfEs \
    >"$OUT/test_gpu.log" 2>&1
RC_GPU=$?
grep -E "(passed|failed|error).* in [0-9.]+s" "$OUT/test_gpu.log" | tail -n 1

echo "== [$(elapsed) s] 2. whole suite, DESCENT_TEST_DEVICE=cuda, xdist"
NPROC=$(nproc 2>/dev/null || echo 8)
WORKERS=$((NPROC > 12 ? 12 : NPROC))
XDIST=(-n "$WORKERS")
"$PY" -c "import xdist" 2>/dev/null || XDIST=()  # pytest-xdist is on the image; be safe
DESCENT_TEST_DEVICE=cuda timeout 110 \
    "$PY" -m pytest tests -v -p no:cacheprovider --timeout 100 "${XDIST[@]}" \
    --ignore=tests/test_gpu.py --ignore=tests/test_distributed.py \
    --ignore=tests/test_explain_html.py -rfE --maxfail=40 >"$OUT/suite.log" 2>&1
RC_SUITE=$?
grep -E "(passed|failed|error).* in [0-9.]+s" "$OUT/suite.log" | tail -n 1

echo "== [$(elapsed) s] 3. benchmarks/gpu.py"
LEFT=$((540 - $(elapsed)))
BUDGET=$((LEFT > 260 ? 250 : LEFT - 10))
timeout $((BUDGET + 30)) "$PY" benchmarks/gpu.py --budget "$BUDGET" --train-reserve 110 \
    --out "$OUT" >"$OUT/bench.log" 2>&1
RC_BENCH=$?

{
    echo "== summary [$(elapsed) s]: test_gpu rc=$RC_GPU, suite rc=$RC_SUITE, bench rc=$RC_BENCH"
    # -v prints each result as it happens: failures show even when a timeout cut the run short
    echo "-- test_gpu: $(grep -c ' PASSED' "$OUT/test_gpu.log") passed lines"
    grep -E "(passed|failed|error).* in [0-9.]+s" "$OUT/test_gpu.log" | tail -n 1
    grep -E "FAILED|ERROR" "$OUT/test_gpu.log" | head -n 40
    echo "-- suite: $(grep -c ' PASSED' "$OUT/suite.log") passed lines"
    grep -E "(passed|failed|error).* in [0-9.]+s" "$OUT/suite.log" | tail -n 1
    grep -E "FAILED|ERROR" "$OUT/suite.log" | head -n 40
    echo "-- bench:"; grep -vE "^  iter " "$OUT/bench.log" | tail -n 30
    echo "-- training curve (every 4th evaluation):"
    grep -E "^  iter " "$OUT/bench.log" | awk 'NR % 4 == 1' | tail -n 15
} 2>&1 | tee "$OUT/summary.txt"
exit 0
