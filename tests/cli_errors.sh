#!/usr/bin/env bash
# cli_errors.sh - bad input through the CLI: each case must end with a non-zero exit status and one
# clear line on stderr, never a crash (a crash exits >= 128) or a hang (each run is time-limited).
set -u
BIN=${1:?usage: cli_errors.sh path/to/trainyard}
FIX=../shared/fixtures/gguf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0

# expect_error NAME PATTERN CMD...: exit 1 or 2, stderr is one line matching PATTERN
expect_error() {
    local name=$1 pattern=$2
    shift 2
    timeout 60 "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$? lines
    lines=$(wc -l <"$TMP/err")
    if [[ $rc -ge 1 && $rc -le 2 && $lines -eq 1 ]] && grep -qiE "$pattern" "$TMP/err"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $rc, $lines stderr lines: $(head -c 400 "$TMP/err")"
    fi
}

# patch SRC DST OLD NEW: copy SRC with the first occurrence of bytes OLD replaced by NEW (same length)
patch() {
    python3 - "$@" <<'PY'
import sys
src, dst, old, new = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode()
data = open(src, 'rb').read()
i = data.index(old)
open(dst, 'wb').write(data[:i] + new + data[i + len(old):])
PY
}

good=$FIX/tiny-e2e-f32.gguf
size=$(stat -c %s "$good")

printf 'NOTG\3\0\0\0' >"$TMP/magic.gguf"; head -c 64 /dev/zero >>"$TMP/magic.gguf"
expect_error "wrong magic" "magic" "$BIN" info "$TMP/magic.gguf"

{ printf 'GGUF\7\0\0\0'; head -c 64 /dev/zero; } >"$TMP/version.gguf"
expect_error "unsupported version" "version" "$BIN" info "$TMP/version.gguf"

head -c $((size / 2)) "$good" >"$TMP/trunc.gguf"
expect_error "truncated file (half)" "truncat|past the end|end of the file" "$BIN" info "$TMP/trunc.gguf"
head -c 1000 "$good" >"$TMP/trunc2.gguf"
expect_error "truncated file (metadata)" "truncat|past the end|end of the file|can hold" "$BIN" info "$TMP/trunc2.gguf"
head -c 5 "$good" >"$TMP/tiny.gguf"
expect_error "5-byte file" "truncat|too small|header" "$BIN" info "$TMP/tiny.gguf"
: >"$TMP/empty.gguf"
expect_error "empty file" "empty|truncat|too small" "$BIN" info "$TMP/empty.gguf"
expect_error "missing file" "no such file|cannot open" "$BIN" info "$TMP/does-not-exist.gguf"
expect_error "a directory" "directory|cannot|not a regular" "$BIN" info "$TMP"

patch "$good" "$TMP/arch.gguf" "llama" "mamba"
expect_error "not a llama model" "not a llama-architecture" "$BIN" info "$TMP/arch.gguf"
patch "$good" "$TMP/meta.gguf" "llama.block_count" "llama.block_coun_"
expect_error "missing required metadata" "missing required metadata 'llama.block_count'" "$BIN" info "$TMP/meta.gguf"
patch "$good" "$TMP/tensor.gguf" "blk.1.ffn_up.weight" "blk.1.ffn_up.weighX"
expect_error "missing tensor" "missing tensor 'blk.1.ffn_up.weight'" "$BIN" info "$TMP/tensor.gguf"

long=$(printf 'word %.0s' $(seq 1 100))
expect_error "prompt longer than the context" "do not fit in the context" \
    "$BIN" generate -m "$good" -c 32 --raw -p "$long" -n 4
expect_error "invalid UTF-8 prompt" "utf-8" "$BIN" tokenize -m "$good" $'abc\xff'
expect_error "missing device" "not available" "$BIN" generate -m "$good" --device cuda -p hi -n 1
expect_error "unknown device" "unknown device" "$BIN" generate -m "$good" --device tpu -p hi -n 1
expect_error "token id out of range" "out of range|outside" "$BIN" detokenize -m "$good" 1 99999
expect_error "bad option value" "expects" "$BIN" generate -m "$good" -n abc -p hi
expect_error "unknown option" "unknown option" "$BIN" generate --frobnicate
expect_error "unknown command" "unknown command" "$BIN" frobnicate

echo "cli_errors: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
