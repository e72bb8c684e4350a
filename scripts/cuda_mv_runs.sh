#!/usr/bin/env bash
# cuda_mv_runs.sh - one device call for decode speed work: build once, make the 7B Q4_K_M, then for
# each environment setting given (e.g. TY_CUDA_NO_PDL=1; "-" for none) a quick test_cuda and
# tg128 (pp512 too with PP=512), then the per-kernel profile (cuda_profile.sh) of the first setting.
#   bash scripts/cuda_mv_runs.sh - TY_CUDA_NO_PDL=1          (carry: device-fixtures)
# BASE="DIR ...": also build copies of the tree whose src/backend/cuda is DIR (the code before a change,
# or a variant: ignored copies carried along) and time each before and after the settings, on the
# same machine (labelled by DIR's parent folder); AGAIN=1 times the first setting a second time too.
# TESTS="SETTING ...": test only those settings; SANITIZE=1: compute-sanitizer on the quick test;
# DEPTHS="0 16384": also time at those context depths (synthetic).
# Summary table last; logs in $OUT (or /tmp/mv_runs).
set -u
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
LOG=${OUT:-/tmp/mv_runs}
mkdir -p "$LOG"
BUILD=${BUILD_DIR:-build-cuda}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
t0=$SECONDS
build() { # build SRC_ROOT BUILD_DIR LOG TARGET...
    local src=$1 dir=$2 log=$3
    shift 3
    cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DTY_CUDA=ON -DTY_CUDA_ARCHS=90-real >"$log.configure" 2>&1 &&
        cmake --build "$dir" -j "$(nproc)" --target "$@" >"$log" 2>&1
}
BASES=()
for d in ${BASE:-}; do
    b=/tmp/base_$(basename "$(dirname "$d")")
    BASES+=("$b")
    rm -rf "$b" && mkdir -p "$b" && cp -r CMakeLists.txt src include tools tests "$b/" &&
        rm -rf "$b/src/backend/cuda" && cp -r "$d" "$b/src/backend/cuda" &&
        (build "$b" "$b/build" "$LOG/build_$(basename "$b").log" trainyard_cli || echo "build of $d failed") &
done
build . "$BUILD" "$LOG/build.log" trainyard_cli test_cuda || { grep -E "error" -A3 "$LOG/build.log" | head -40; exit 1; }
wait
echo "build: $((SECONDS - t0)) s"
[[ -s /tmp/m.gguf ]] || "./$BUILD/trainyard" synth --preset mistral-7b --type Q4_K_M --synthetic-vocab -o /tmp/m.gguf >/dev/null
bench() { # bench LABEL BINARY ENV (at each context depth of DEPTHS, default 0)
    local b d
    for d in ${DEPTHS:-0}; do
        b=$(env ${3/#-/} "$2" bench -m /tmp/m.gguf --device cuda -p ${PP:-0} -n 128 -r 5 --no-bandwidth \
            $([[ $d != 0 ]] && echo "--ctx-depth $d --synthetic-depth") 2>&1 | grep -E "^(pp|tg)[0-9]+" | tr -s ' ' | tr '\n' ';')
        ROWS+=("$1 @$d  $b")
        echo "$1 @$d  $b"
    done
}
ROWS=()
for b in "${BASES[@]}"; do [[ -x $b/build/trainyard ]] && bench "${b#/tmp/}" "$b/build/trainyard" -; done
for v in "$@"; do
    if [[ " ${TESTS-$*} " == *" $v "* ]]; then
        env ${v/#-/} TY_CUDA_QUICK=1 TY_FIXTURES=device-fixtures timeout 200 "./$BUILD/test_cuda" >"$LOG/test_${v//=/}.log" 2>&1
        ROWS+=("$v  $(grep -E "^test_cuda: [0-9]+ passed" "$LOG/test_${v//=/}.log" | tail -1)")
        grep -E "failed" "$LOG/test_${v//=/}.log" | head -5
    fi
    bench "$v" "./$BUILD/trainyard" "$v"
done
for b in "${BASES[@]}"; do [[ -x $b/build/trainyard ]] && bench "${b#/tmp/} (again)" "$b/build/trainyard" -; done
[[ -n "${AGAIN:-}" ]] && bench "${1} (again)" "./$BUILD/trainyard" "$1"
env ${1/#-/} OUT=$LOG bash scripts/cuda_profile.sh /tmp/m.gguf >"$LOG/profile.txt" 2>&1
head -16 "$LOG/profile.txt"
if [[ -n "${SANITIZE:-}" ]]; then
    env ${1/#-/} TY_CUDA_QUICK=1 TY_FIXTURES=device-fixtures timeout 240 compute-sanitizer --tool memcheck \
        --error-exitcode 3 "./$BUILD/test_cuda" >"$LOG/sanitizer.log" 2>&1
    ROWS+=("sanitizer rc=$?: $(grep -E "ERROR SUMMARY" "$LOG/sanitizer.log" | tail -1)")
fi
echo "==== summary ($((SECONDS - t0)) s)"
printf '%s\n' "${ROWS[@]}"
