#!/usr/bin/env bash
# spec_curve.sh - speculative decoding's speedup against acceptance rate and draft length k, with
# `trainyard bench`'s oracle mode: the draft model runs at its full cost, but its proposals are the
# target's recorded greedy continuation, each corrupted with probability 1 - RATE. One bench run per
# k measures plain decoding once and every rate after it.
#
#   bench/spec_curve.sh [-d DEVICE] [-t THREADS] [-r REPEATS] [-n 128] [-p 16] [-k "2 4 8"] \
#                       [-a 0.5,0.7,0.8,0.9,1.0] TARGET.gguf DRAFT.gguf
#
# Prints a markdown table: k, oracle rate, measured per-token acceptance, tokens per target step,
# plain and speculative tokens/s, speedup.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TY=${TRAINYARD:-$here/build/trainyard}
device=cpu threads=0 reps=3 n=128 p=16 ks="2 4 8" rates=0.5,0.7,0.8,0.9,1.0
while getopts "d:t:r:n:p:k:a:" opt; do
    case $opt in
        d) device=$OPTARG ;; t) threads=$OPTARG ;; r) reps=$OPTARG ;; n) n=$OPTARG ;; p) p=$OPTARG ;; k) ks=$OPTARG ;; a) rates=$OPTARG ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 2 ]] || { echo "usage: $0 [-d DEVICE] [-t T] [-r R] [-n N] [-p P] [-k \"2 4 8\"] [-a RATES] TARGET.gguf DRAFT.gguf" >&2; exit 2; }

# value KEY JSONLINE: a field of one JSON line (numbers and quoted strings)
value() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$2" | head -1; }

echo "| k | oracle rate | acceptance (measured) | tokens/step | plain t/s | speculative t/s | speedup |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for k in $ks; do
    "$TY" bench -m "$1" --device "$device" --draft-model "$2" --draft-max "$k" --draft-min "$k" --oracle-accept "$rates" \
        -t "$threads" -r "$reps" -n "$n" -p "$p" --json |
    while read -r line; do
        printf '| %s | %s | %.3f | %.2f | %.2f | %.2f | %.2fx |\n' "$k" "$(value oracle_accept "$line")" \
            "$(value acceptance_per_token "$line")" "$(value tokens_per_step "$line")" \
            "$(value plain_tokens_per_second "$line")" "$(value spec_tokens_per_second "$line")" \
            "$(value speedup "$line")"
    done
done
