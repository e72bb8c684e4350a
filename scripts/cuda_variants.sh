#!/usr/bin/env bash
# cuda_variants.sh - builds the CLI once per set of compile-time kernel options and times decode
# (tg128) and prompts (pp512) with each on one synthesized 7B Q4_K_M file, side by side in one run.
#   bash scripts/cuda_variants.sh "" "-DSOME_KERNEL_OPTION=1" ...
set -u
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
M=${MODEL:-/tmp/m.gguf}
i=0
for flags in "$@"; do
    d=build-var$i
    cmake -S . -B $d -DCMAKE_BUILD_TYPE=Release -DTY_CUDA=ON -DTY_CUDA_ARCHS=90-real "-DCMAKE_CUDA_FLAGS=$flags" >/dev/null &&
        cmake --build $d -j "$(nproc)" --target trainyard_cli >/dev/null 2>$d.err || { echo "build failed: $flags"; tail -5 $d.err; }
    i=$((i + 1))
done
[[ -s $M ]] || ./build-var0/trainyard synth --preset mistral-7b --type Q4_K_M --synthetic-vocab -o "$M" >/dev/null
i=0
for flags in "$@"; do
    r=$(./build-var$i/trainyard bench -m "$M" --device cuda -p ${PP:-512} -n ${TG:-128} -r 3 --no-bandwidth --json 2>&1 |
        python3 -c 'import sys,json; print("  ".join("%s %.1f" % (j["test"], j["tokens_per_second"]) for j in map(json.loads, (l for l in sys.stdin if l.startswith("{")))))')
    printf '%-40s %s\n' "${flags:-default}" "$r"
    i=$((i + 1))
done
