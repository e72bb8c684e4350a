#!/usr/bin/env bash
# gpu_check.sh - builds the CUDA backend on a GPU machine and checks it: test_cuda (every op against
# the CPU, whole models against the CPU's exact path, a synthesized 7B Q4_K_M), compute-sanitizer
# memcheck on a short test_cuda run, and `trainyard bench` (pp512 / tg128, and at 16k depth) on the 7B
# model, then llama.cpp's llama-bench on the same file where LLAMA_BENCH names a CUDA build of it.
# Run from the repository root; prints a summary at the end and leaves logs in $OUT (or /tmp/gpu_check).
#
# Fixtures: the device machine does not see ../shared, so copy what test_cuda needs into
# device-fixtures/ (git-ignored) first and carry it. About 21 MiB (the repository itself is ~30 MiB
# of the 64 MiB a device run may carry):
#   cases.txt                                  token sequences of the fixture models
#   gguf/tiny-hd128-{q4_k_m,q5_k_m,q4_0}.gguf  Q4_K, Q5_K, Q6_K, Q4_0; head_dim 128, vocab 512
#   gguf/tiny-e2e-{q4_k_m,q5_k_m}.gguf         Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Q8_0; vocab 32768, GQA
# F16/F32 models are synthesized here (trainyard synth --preset tiny); data/yard-target-27m-q8_0.gguf
# (Q8_0, 5:1 GQA) travels with the repository. Copy command (from the repository root):
#   mkdir -p device-fixtures/gguf && cp ../shared/fixtures/cases.txt device-fixtures/ && cp ../shared/fixtures/gguf/tiny-hd128-q4_k_m.gguf ../shared/fixtures/gguf/tiny-hd128-q5_k_m.gguf ../shared/fixtures/gguf/tiny-hd128-q4_0.gguf ../shared/fixtures/gguf/tiny-e2e-q4_k_m.gguf ../shared/fixtures/gguf/tiny-e2e-q5_k_m.gguf device-fixtures/gguf/
# Then on the device (carry: device-fixtures):
#   bash scripts/gpu_check.sh
# Environment: TY_GPU_CHECK_SKIP="sanitizer bench spec" skips steps ("bench" all four bench steps,
# "bench_depth" etc. one; "configure build" too, to check a build made elsewhere); BUILD_DIR (default
# build-cuda).
set -u
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
LOG=${OUT:-/tmp/gpu_check}
mkdir -p "$LOG"
BUILD=${BUILD_DIR:-build-cuda}
SKIP=" ${TY_GPU_CHECK_SKIP:-} "
SUMMARY=()
FAILED=0

step() { # step NAME LOGFILE TIMEOUT_S COMMAND...
    local name=$1 log=$2 limit=$3
    shift 3
    if [[ "$SKIP" == *" $name "* || ("$name" == bench_* && "$SKIP" == *" bench "*) ]]; then
        SUMMARY+=("SKIP  $name")
        return 0
    fi
    echo "==== $name: $*"
    local t0=$SECONDS rc
    timeout "$limit" "$@" >"$LOG/$log" 2>&1
    rc=$?
    local dt=$((SECONDS - t0))
    if [[ $rc -eq 0 ]]; then
        SUMMARY+=("PASS  $name (${dt}s)")
        tail -n 8 "$LOG/$log"
    else
        [[ $rc -eq 124 ]] && SUMMARY+=("FAIL  $name: timed out after ${limit}s") || SUMMARY+=("FAIL  $name (exit $rc, ${dt}s; log $LOG/$log)")
        FAILED=1
        tail -n 60 "$LOG/$log"
    fi
    return $rc
}

echo "==== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>&1 | head -5
nvcc --version 2>&1 | tail -2
ls device-fixtures/gguf 2>/dev/null || echo "WARNING: device-fixtures/gguf is missing (see this script's header)"

NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
step configure configure.log 120 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTY_CUDA=ON \
    -DTY_CUDA_ARCHS=90-real -DCMAKE_CUDA_COMPILER="$NVCC" || { printf '%s\n' "${SUMMARY[@]}"; exit 1; }
step build build.log 400 cmake --build "$BUILD" -j "$(nproc)" --target trainyard_cli test_cuda ||
    { printf '%s\n' "${SUMMARY[@]}"; exit 1; }

# Models made here: a 7B Q4_K_M for the speed run and the 7B check, tiny F16/F32 for those types.
step synth synth.log 240 bash -c "
    ./$BUILD/trainyard synth --preset mistral-7b --type Q4_K_M --synthetic-vocab -o /tmp/m.gguf &&
    ./$BUILD/trainyard synth --preset tiny --type F16 --synthetic-vocab -o /tmp/tiny-f16.gguf &&
    ./$BUILD/trainyard synth --preset tiny --type F32 --synthetic-vocab -o /tmp/tiny-f32.gguf && ls -la /tmp/*.gguf"
SEVEN_B=""
[[ -s /tmp/m.gguf ]] && SEVEN_B=/tmp/m.gguf
EXTRA=""
[[ -s /tmp/tiny-f16.gguf ]] && EXTRA=/tmp/tiny-f16.gguf:/tmp/tiny-f32.gguf

step test_cuda test_cuda.log 300 env TY_FIXTURES=device-fixtures TY_CUDA_MODELS="$EXTRA" TY_7B="$SEVEN_B" \
    TY_TEST_VERBOSE=1 "./$BUILD/test_cuda"
grep -E "failed|skipped|checked in|7B" "$LOG/test_cuda.log" | grep -v " 0 failed" | head -30
if grep -q "skipped (no CUDA device)" "$LOG/test_cuda.log" 2>/dev/null; then
    SUMMARY+=("FAIL  test_cuda skipped: the CUDA device is not usable (see $LOG/test_cuda.log)")
    FAILED=1
fi

if command -v compute-sanitizer >/dev/null 2>&1; then
    step sanitizer sanitizer.log 240 env TY_CUDA_QUICK=1 TY_FIXTURES=device-fixtures \
        compute-sanitizer --tool memcheck --error-exitcode 3 "./$BUILD/test_cuda"
    grep -E "ERROR SUMMARY|Invalid|passed" "$LOG/sanitizer.log" | head -10
else
    SUMMARY+=("SKIP  sanitizer (compute-sanitizer not found)")
fi

if [[ -n "$SEVEN_B" ]]; then
    # GPU memory: the process's peak as nvidia-smi samples it every 100 ms (CUDA context included)
    peak_mem() { # peak_mem LABEL step ...: runs the step, then appends "LABEL: peak ... MiB" to mem.log
        local label=$1
        shift
        nvidia-smi --query-compute-apps=used_memory --format=csv,noheader,nounits -lms 100 >"$LOG/mem.txt" 2>/dev/null &
        local sampler=$!
        "$@"
        local rc=$?
        kill $sampler 2>/dev/null
        wait $sampler 2>/dev/null
        local peak
        peak=$(sort -n "$LOG/mem.txt" | tail -1)
        [[ -n "$peak" ]] && echo "$label: peak process GPU memory $peak MiB" >>"$LOG/mem.log"
        return $rc
    }
    peak_mem "bench at depth 0 (context 528)" step bench bench.log 240 "./$BUILD/trainyard" bench -m /tmp/m.gguf \
        --device cuda -p 512 -n 128 -r 3 --no-bandwidth
    peak_mem "bench at depth 16384 (context 16912)" step bench_depth bench_depth.log 300 "./$BUILD/trainyard" bench \
        -m /tmp/m.gguf --device cuda -p 512 -n 128 -r 3 --ctx-depth 16384 --synthetic-depth --no-bandwidth
    step bench_16k bench_16k.log 240 "./$BUILD/trainyard" bench -m /tmp/m.gguf --device cuda -p 16384 -n 0 -r 2 --no-bandwidth
    # the other types of the issue's table
    step bench_types bench_types.log 400 bash -c "for t in Q8_0 Q4_0; do ./$BUILD/trainyard synth --preset mistral-7b \
        --type \$t --synthetic-vocab -o /tmp/m-\$t.gguf >/dev/null && echo \$t && ./$BUILD/trainyard bench -m /tmp/m-\$t.gguf \
        --device cuda -p 512 -n 128 -r 3 --no-bandwidth | grep -E '^(pp|tg)[0-9]' | sed \"s/^/\$t /\" || exit 1; done"
    # speculative decoding: the oracle curve with the draft preset (bench/spec_curve.sh)
    step spec spec.log 300 bash -c "./$BUILD/trainyard synth --preset draft --type Q4_K_M --synthetic-vocab \
        -o /tmp/draft.gguf >/dev/null && TRAINYARD=./$BUILD/trainyard bash bench/spec_curve.sh -d cuda -r 3 -n 128 \
        /tmp/m.gguf /tmp/draft.gguf"
    # llama.cpp beside it, where a CUDA build of llama-bench is present (LLAMA_BENCH=path; never built here)
    if [[ -n "${LLAMA_BENCH:-}" && -x "${LLAMA_BENCH:-}" ]]; then
        step llama_bench llama_bench.log 600 bash -c "\"$LLAMA_BENCH\" -m /tmp/m.gguf -ngl 99 -fa 1 -p 512 -n 128 -r 3 &&
            \"$LLAMA_BENCH\" -m /tmp/m.gguf -ngl 99 -fa 1 -p 512 -n 128 -d 16384 -r 2 &&
            \"$LLAMA_BENCH\" -m /tmp/m.gguf -ngl 99 -fa 1 -p 16384 -n 0 -r 2 &&
            for t in Q8_0 Q4_0; do \"$LLAMA_BENCH\" -m /tmp/m-\$t.gguf -ngl 99 -fa 1 -p 512 -n 128 -r 3; done"
    else
        SUMMARY+=("SKIP  llama.cpp bench (set LLAMA_BENCH to a CUDA llama-bench to compare)")
    fi
else
    SUMMARY+=("SKIP  bench (no 7B model)")
fi

echo
echo "==== summary (logs in $LOG)"
printf '%s\n' "${SUMMARY[@]}" | tee "$LOG/summary.txt"
grep -E "^test_cuda: [0-9]+ passed" "$LOG/test_cuda.log" 2>/dev/null | tee -a "$LOG/summary.txt"
echo "==== speed (random 7B Q4_K_M, tokens/s)" | tee -a "$LOG/summary.txt"
grep -h -E "^(pp|tg)[0-9]+" "$LOG/bench.log" "$LOG/bench_depth.log" "$LOG/bench_16k.log" 2>/dev/null | tee -a "$LOG/summary.txt"
grep -h -E "^Q[0-9_]+ (pp|tg)" "$LOG/bench_types.log" 2>/dev/null | tee -a "$LOG/summary.txt"
cat "$LOG/mem.log" 2>/dev/null | tee -a "$LOG/summary.txt"
grep -E "\| *(pp|tg)[0-9]+" "$LOG/llama_bench.log" 2>/dev/null | sed 's/^/llama.cpp: /' | tee -a "$LOG/summary.txt"
echo "==== speculative decoding (oracle acceptance; speedup over plain decoding)" | tee -a "$LOG/summary.txt"
grep -E "^\| [0-9]" "$LOG/spec.log" 2>/dev/null | tee -a "$LOG/summary.txt"
exit $FAILED
