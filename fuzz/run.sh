#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] - fuzzes the GGUF reader with libFuzzer (default 60 seconds).
#
# Configures a separate clang build (build-fuzz/, or $TY_FUZZ_BUILD) with TY_FUZZ=ON, builds
# fuzz_gguf, and runs it on a scratch copy of fuzz/seed (the committed seeds are never modified).
# Inputs are capped at 64 KiB and any single allocation above 64 MiB counts as a crash, so an
# unchecked count in a hostile file shows up as a failure. Crash inputs are kept in
# build-fuzz/artifacts/. Exits non-zero on a crash or a build failure.
set -euo pipefail

secs=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${TY_FUZZ_BUILD:-$root/build-fuzz}
cc=${CC_FUZZ:-clang}

command -v "$cc" >/dev/null || { echo "fuzz/run.sh: $cc not found (apt-get install clang)" >&2; exit 2; }

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DTY_FUZZ=ON -DTY_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_gguf -j"$(nproc)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$build/artifacts"
cp "$root"/fuzz/seed/* "$work/corpus/"

echo "fuzzing gguf_open_memory for $secs s (corpus in $work/corpus)"
"$build/fuzz_gguf" "$work/corpus" \
    -max_total_time="$secs" -max_len=65536 -malloc_limit_mb=64 -timeout=10 \
    -dict="$root/fuzz/gguf.dict" -artifact_prefix="$build/artifacts/" -print_final_stats=1
