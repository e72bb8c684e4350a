#!/usr/bin/env bash
# compare_cpu.sh - trainyard and llama.cpp side by side on the same GGUF files, same threads, in one
# run, so that the ratio is fair on a noisy machine. llama.cpp is not part of this project: point
# LLAMA_BENCH at a llama-bench binary you built yourself (it is skipped when absent).
#
#   bench/compare_cpu.sh [-t THREADS] [-r REPEATS] [-p 512] [-n 128] [-d DEPTH] FILE.gguf...
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TY=${TRAINYARD:-$here/build/trainyard}
LB=${LLAMA_BENCH:-}
threads=$(nproc) reps=3 p=512 n=128 depth=0
while getopts "t:r:p:n:d:" opt; do
    case $opt in
        t) threads=$OPTARG ;; r) reps=$OPTARG ;; p) p=$OPTARG ;; n) n=$OPTARG ;; d) depth=$OPTARG ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || { echo "usage: $0 [-t T] [-r R] [-p P] [-n N] [-d DEPTH] FILE.gguf..." >&2; exit 2; }

# value KEY JSONLINE: a number from one JSON line
value() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" <<<"$2" | head -1; }

printf '%-28s %-8s %12s %12s %8s\n' file test trainyard llama.cpp ratio
for f in "$@"; do
    for test in pp tg; do
        if [[ $test == pp ]]; then targs=(-p "$p" -n 0); largs=(-p "$p" -n 0); else targs=(-p 0 -n "$n"); largs=(-p 0 -n "$n"); fi
        ours=$("$TY" bench -m "$f" -t "$threads" -r "$reps" --ctx-depth "$depth" --json --no-bandwidth "${targs[@]}" | tail -1)
        ty_tps=$(value tokens_per_second "$ours")
        lc_tps=""
        if [[ -n $LB && -x $LB ]]; then
            theirs=$("$LB" -m "$f" -t "$threads" -r "$reps" -d "$depth" -o jsonl "${largs[@]}" 2>/dev/null | tail -1)
            lc_tps=$(value avg_ts "$theirs")
        fi
        ratio=$([[ -n $lc_tps ]] && awk -v a="$ty_tps" -v b="$lc_tps" 'BEGIN{printf "%.2f", a/b}' || echo "-")
        printf '%-28s %-8s %12s %12s %8s\n' "$(basename "$f")" "$test$([[ $test == pp ]] && echo "$p" || echo "$n")@$depth" \
            "$ty_tps" "${lc_tps:--}" "$ratio"
    done
done
