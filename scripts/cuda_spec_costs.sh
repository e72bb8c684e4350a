#!/usr/bin/env bash
# cuda_spec_costs.sh - what a speculative step costs on the GPU, piece by piece: the target's
# verification batches (pp of 1..16 tokens, one batch each), the draft's decode, and whole
# speculative steps at acceptance 1.0 (oracle), so that the step can be compared with its parts.
#   TY=build-cu/trainyard bash scripts/cuda_spec_costs.sh   (on the device; makes its models in /tmp)
set -u
TY=${TY:-build-cu/trainyard}
T=/tmp/spec-target.gguf D=/tmp/spec-draft.gguf
[[ -s $T ]] || $TY synth --preset mistral-7b --type Q4_K_M --synthetic-vocab -o $T >/dev/null
[[ -s $D ]] || $TY synth --preset draft --type Q4_K_M --synthetic-vocab -o $D >/dev/null
v() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$2" | head -1; }
echo "== target: one batch of n tokens (ms per batch)"
for n in ${NS:-1 2 3 5 9 16}; do
    l=$($TY bench -m $T --device cuda -p $n -n 0 -r ${R:-5} --json 2>/dev/null | head -1)
    tps=$(v tokens_per_second "$l"); awk -v n=$n -v t="$tps" 'BEGIN{printf "n=%-3d %8.1f tok/s  %.3f ms\n", n, t, n*1000/t}'
done
echo "== draft decode"
l=$($TY bench -m $D --device cuda -p 16 -n 128 -r 3 --json 2>/dev/null | tail -1)
tps=$(v tokens_per_second "$l"); awk -v t="$tps" 'BEGIN{printf "draft tg128 %.1f tok/s  %.3f ms/token\n", t, 1000/t}'
echo "== speculative, oracle acceptance ${ACC:-1.0}"
for k in ${KS:-2 4 8}; do
    $TY bench -m $T --device cuda --draft-model $D --draft-max $k --draft-min $k --oracle-accept ${ACC:-1.0} \
        -p 16 -n 128 -r 3 --json 2>&1 | tail -1 | sed "s/^/k=$k /"
done
