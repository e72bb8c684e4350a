#!/usr/bin/env bash
# run.sh - builds test_cuda with the CUDA backend's kernels running on the host, one fiber per CUDA
# thread (emu.cpp), and runs it: a way to check kernel indexing, barriers and numerics without a GPU.
#
# The .cu files are compiled as C++ by g++ against the stand-in headers here (cuda_runtime.h,
# cuda_fp16.h: no CUDA toolkit needed); transform.py rewrites each `kernel<<<grid, block, smem,
# stream>>>(args)` into an emulated launch. Blocks run one after another; __syncthreads/__syncwarp
# are barriers over a block's / warp's live fibers (a mismatched barrier aborts with "deadlock");
# shuffles exchange values between two warp barriers. Device memory is host memory, so
# SAN=address (AddressSanitizer) reports out-of-bounds accesses in kernels. Not modelled: timing,
# races between unsynchronised threads, warp-divergence subtleties, async copies (all synchronous).
# EMU_ADJACENT=1 places allocations back to back as cudaMalloc often does (catches off-by-one
# pointer checks that separate heap blocks hide). It is slow: use small fixtures (see below).
#
# usage (from the repository root):
#   bash scripts/cuda_emu/run.sh                     # TY_CUDA_QUICK=1 run over ../shared/fixtures
#   SAN=address TY_CUDA_QUICK=0 TY_FIXTURES=dir bash scripts/cuda_emu/run.sh
# A small fixture folder: mkdir -p /tmp/fx/gguf; grep -E '^tiny-hd128 rand_len(1_bos|7|33_bos) '
#   ../shared/fixtures/cases.txt > /tmp/fx/cases.txt; ln -s $PWD/../shared/fixtures/gguf/tiny-hd128-q4_k_m.gguf /tmp/fx/gguf/
set -eu
R=$(cd "$(dirname "$0")/../.." && pwd)
E="$R/scripts/cuda_emu"
B="$R/build-cuda-emu${SAN:+-$SAN}"
mkdir -p "$B/obj" "$B/gen"
FLAGS="-O1 -g -D_GNU_SOURCE -DTY_HAVE_CUDA -I$R/include -I$R/src -I$R/tests/support"
[[ -n "${SAN:-}" ]] && FLAGS="$FLAGS -fsanitize=$SAN -fno-omit-frame-pointer"
pids=()
for f in $(find "$R/src" -name '*.c') "$R"/tests/support/*.c "$R/tests/test_cuda.c"; do
    o="$B/obj/$(echo "${f#$R/}" | tr / _).o"
    gcc -std=c11 $FLAGS -Wall -c "$f" -o "$o" & pids+=($!)
done
for f in "$R"/src/backend/cuda/*.cu; do
    b=$(basename "$f" .cu)
    python3 "$E/transform.py" "$f" > "$B/gen/$b.cpp"
    g++ -std=c++17 $FLAGS -ffp-contract=off -I"$E" -I"$R/src/backend/cuda" -Wall -Wno-unknown-pragmas \
        -c "$B/gen/$b.cpp" -o "$B/obj/cu_$b.o" & pids+=($!)
done
g++ -std=c++17 $FLAGS -ffp-contract=off -I"$E" -I"$R/src" -I"$R/include" -c "$E/emu.cpp" -o "$B/obj/emu.o"
for p in "${pids[@]}"; do wait "$p"; done
g++ ${SAN:+-fsanitize=$SAN} "$B"/obj/*.o -o "$B/test_cuda_emu" -lm -lpthread
echo "built $B/test_cuda_emu"
cd "$R"
TY_CUDA_QUICK=${TY_CUDA_QUICK:-1} ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$B/test_cuda_emu"
