#!/usr/bin/env bash
# cli_run.sh - the subcommands doing their jobs end to end on fixture models and the built-in model.
set -u
BIN=${1:?usage: cli_run.sh path/to/trainyard}
FIX=../shared/fixtures
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

# tokenize: the short_en case of cases.txt (BOS + sentencepiece ids)
text=$(python3 -c "import json;print(json.load(open('$FIX/cases.json'))['models']['tiny-e2e']['cases'][0]['text'])" 2>/dev/null)
want=$(awk '$1=="tiny-e2e" && $2=="short_en" {s="["; for(i=4;i<=NF;i++) s=s (i>4?", ":"") $i; print s "]"}' $FIX/cases.txt)
got=$("$BIN" tokenize -m $FIX/gguf/tiny-e2e-f16.gguf "$text")
[[ "$got" == "$want" ]] && ok || bad "tokenize short_en: got $got want $want"

# detokenize gives the text back
ids=$(echo "$want" | tr -d '[],')
back=$("$BIN" detokenize -m $FIX/gguf/tiny-e2e-f16.gguf $ids)
[[ "$back" == "$text" ]] && ok || bad "detokenize: got '$back' want '$text'"

# logits: same bytes layout as the references, close to HF
"$BIN" logits -m $FIX/gguf/tiny-hd128-f32.gguf --tokens "$(awk '$2=="rand_len7"{s=$4; for(i=5;i<=NF;i++) s=s "," $i; print s}' $FIX/cases.txt)" -o "$TMP/l.f32" \
  && python3 - "$TMP/l.f32" $FIX/hf/tiny-hd128/rand_len7.logits.f32 <<'PY' && ok || bad "logits file"
import struct, sys
a, b = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
assert len(a) == len(b) == 7 * 512 * 4, (len(a), len(b))
fa, fb = struct.unpack('<%df' % (len(a) // 4), a), struct.unpack('<%df' % (len(b) // 4), b)
assert max(abs(x - y) for x, y in zip(fa, fb)) < 1e-3
PY

# info lists the tensors
"$BIN" info $FIX/gguf/tiny-hd128-q4_k_m.gguf >"$TMP/info" && grep -q "Q4_K" "$TMP/info" && grep -q "blk.1.ffn_down.weight" "$TMP/info" && grep -q "layers          2" "$TMP/info" && ok || bad "info"

# generate with the built-in model: greedy is deterministic, and seeded sampling is reproducible
g1=$("$BIN" generate -p "How do I configure the network?" -n 24 --temp 0 2>/dev/null)
g2=$("$BIN" generate -p "How do I configure the network?" -n 24 --temp 0 2>/dev/null)
[[ -n "$g1" && "$g1" == "$g2" ]] && ok || bad "greedy generate not deterministic: '$g1' vs '$g2'"
s1=$("$BIN" generate -p "Write about rivers." -n 24 --seed 7 2>/dev/null)
s2=$("$BIN" generate -p "Write about rivers." -n 24 --seed 7 2>/dev/null)
[[ -n "$s1" && "$s1" == "$s2" ]] && ok || bad "seeded generate not reproducible"
"$BIN" generate -p "Hello" -n 8 --temp 0 2>"$TMP/stats" >/dev/null && grep -q "tokens/s" "$TMP/stats" && grep -q "load" "$TMP/stats" && ok || bad "generate stats line"

# chat: two turns from stdin
printf 'What is a kernel?\nAnd a module?\n' | "$BIN" chat --system "Answer briefly." -n 16 --temp 0 >"$TMP/chat" 2>/dev/null
[[ $(grep -c . "$TMP/chat") -ge 2 ]] && ok || bad "chat did not answer two turns: $(cat "$TMP/chat")"

echo "cli_run: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
