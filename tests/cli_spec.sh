#!/usr/bin/env bash
# cli_spec.sh - speculative decoding through the CLI: generate and chat with --draft-model and
# --lookup give the plain greedy text and a statistics line; refusals; bench's oracle mode;
# synth's draft preset.
set -u
BIN=${1:?usage: cli_spec.sh path/to/trainyard}
FIX=../shared/fixtures/gguf
T=../shared/models/yard-target-27m-q8_0.gguf
D=../shared/models/yard-draft-9m-q8_0.gguf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

# generate: greedy text identical with a draft, with lookup, with both; the statistics line
P="How do I configure the network interface?"
plain=$("$BIN" generate -m $T -p "$P" -n 40 --temp 0 2>/dev/null)
[[ -n "$plain" ]] && ok || bad "plain generate produced nothing"
for opts in "--draft-model $D" "--draft-model $D --draft-max 4 --draft-min 4" "--lookup" "--lookup --draft-model $D" \
            "--draft-model $T --draft-max 3"; do
    got=$("$BIN" generate -m $T -p "$P" -n 40 --temp 0 $opts 2>"$TMP/err")
    [[ "$got" == "$plain" ]] && ok || bad "generate $opts: '$got' vs '$plain'"
    grep -qE "speculative: [0-9]+ drafted, [0-9]+ accepted, acceptance rate [0-9.]+%.*mean accepted length [0-9.]+.*tokens/s" "$TMP/err" \
        && ok || bad "generate $opts: no statistics line: $(cat "$TMP/err")"
done
# the draft is the target itself: everything proposed is accepted
"$BIN" generate -m $T -p "$P" -n 40 --temp 0 --draft-model $T --draft-max 3 --draft-min 3 2>"$TMP/err" >/dev/null
grep -q "acceptance rate 100.0%" "$TMP/err" && ok || bad "draft = target: $(cat "$TMP/err")"
# sampling: same seed, same text
s1=$("$BIN" generate -m $T -p "Write about rivers." -n 24 --seed 7 --draft-model $D 2>/dev/null)
s2=$("$BIN" generate -m $T -p "Write about rivers." -n 24 --seed 7 --draft-model $D 2>/dev/null)
[[ -n "$s1" && "$s1" == "$s2" ]] && ok || bad "seeded speculative sampling not reproducible"

# chat: two turns, same answers as without the draft
printf 'What is a kernel?\nAnd a module?\n' | "$BIN" chat -m $T -n 16 --temp 0 >"$TMP/chat_plain" 2>/dev/null
printf 'What is a kernel?\nAnd a module?\n' | "$BIN" chat -m $T -n 16 --temp 0 --draft-model $D --lookup >"$TMP/chat_spec" 2>"$TMP/err"
[[ $(grep -c . "$TMP/chat_plain") -ge 2 ]] && cmp -s "$TMP/chat_plain" "$TMP/chat_spec" && ok \
    || bad "chat with a draft differs: $(cat "$TMP/chat_spec")"
[[ $(grep -c "speculative:" "$TMP/err") -eq 2 ]] && ok || bad "chat: one statistics line per answer expected"

# refusals
"$BIN" generate -m $T -p hi --draft-model $FIX/tiny-hd128-q8_0.gguf 2>"$TMP/err" >/dev/null
[[ $? -eq 1 ]] && grep -q "draft vocabulary differs from the target's: 512 vs 32768 tokens" "$TMP/err" && ok \
    || bad "vocabulary mismatch: $(cat "$TMP/err")"
"$BIN" generate -m $T -p hi --draft-model "$TMP/none.gguf" 2>"$TMP/err" >/dev/null
[[ $? -eq 1 ]] && grep -q "cannot load draft model" "$TMP/err" && ok || bad "missing draft: $(cat "$TMP/err")"
"$BIN" generate -m $T -p hi --draft-model $D --draft-max 0 2>"$TMP/err" >/dev/null
[[ $? -eq 2 ]] && grep -q "draft-max" "$TMP/err" && ok || bad "--draft-max 0: $(cat "$TMP/err")"
"$BIN" generate -m $T -p hi --draft-model $D --draft-min 5 --draft-max 2 2>"$TMP/err" >/dev/null
[[ $? -eq 1 ]] && grep -q "invalid draft length" "$TMP/err" && ok || bad "--draft-min > --draft-max: $(cat "$TMP/err")"
"$BIN" bench -m $T --oracle-accept 0.5 2>"$TMP/err" >/dev/null
[[ $? -eq 2 ]] && grep -q "need --draft-model" "$TMP/err" && ok || bad "bench --oracle-accept alone: $(cat "$TMP/err")"

# bench: the oracle sets the acceptance; speculative output always equals plain greedy output
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print(d['$1'])"; }
out=$("$BIN" bench -m $T --draft-model $D --draft-max 4 --draft-min 4 --oracle-accept 1.0 -n 24 -p 8 -r 1 --json 2>"$TMP/err")
[[ $(echo "$out" | json acceptance_per_token) == "1.0" && $(echo "$out" | json identical) == "1" ]] && ok \
    || bad "bench oracle 1.0: $out $(cat "$TMP/err")"
[[ $(echo "$out" | json tokens_per_step) == "4.8" ]] && ok || bad "oracle 1.0, k=4, 24 tokens: 4 steps of 5 tokens and 1 of 4 expected: $out"
out=$("$BIN" bench -m $T --draft-model $D --draft-max 2 --draft-min 2 --oracle-accept 0.0 -n 16 -p 8 -r 1 --json 2>"$TMP/err")
[[ $(echo "$out" | json acceptance_per_token) == "0.0" && $(echo "$out" | json identical) == "1" ]] && ok \
    || bad "bench oracle 0.0: $out $(cat "$TMP/err")"
"$BIN" bench -m $T --draft-model $D -n 16 -p 8 -r 1 >"$TMP/out" 2>"$TMP/err"
[[ $? -eq 0 ]] && grep -qE "speedup" "$TMP/out" && grep -qE " yes$" "$TMP/out" && ok || bad "bench table: $(cat "$TMP/out" "$TMP/err")"

# synth --preset draft: the 7B's vocabulary at about 1/50 of its Q4_K_M bytes, usable as a draft
"$BIN" synth --preset draft -o "$TMP/draft.gguf" >/dev/null 2>&1
size=$(stat -c %s "$TMP/draft.gguf" 2>/dev/null || echo 0)
[[ $size -gt 80000000 && $size -lt 95000000 ]] && ok || bad "draft preset size $size"
"$BIN" info "$TMP/draft.gguf" >"$TMP/info" 2>&1 && grep -q "layers          14" "$TMP/info" && grep -q "32768 tokens" "$TMP/info" \
    && ok || bad "draft preset info: $(head -12 "$TMP/info")"
got=$("$BIN" generate -m $T -p "$P" -n 12 --temp 0 --draft-model "$TMP/draft.gguf" 2>/dev/null)
[[ "$got" == "$(echo "$plain" | head -c ${#got})" && -n "$got" ]] && ok || bad "synthesized draft: '$got'"

echo "cli_spec: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
