#!/usr/bin/env bash
# Coverage-guided fuzzing of the capnweb message decoder (fuzz/, harness
# `capnweb_fuzz::decode_message`) with libFuzzer on a stable toolchain.
#
# `cargo fuzz` needs nightly only for its sanitizers; the coverage instrumentation libFuzzer
# steers by is made of stable `-C` flags, so this builds the same target with those flags and
# no AddressSanitizer (the crate is `forbid(unsafe_code)`, so ASan would find little more).
# With nightly and cargo-fuzz installed, `cargo fuzz run decode_message fuzz/seeds` works too.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET]   (default 30 s, decode_message; the other target
# is session_machine, the session state-machine fuzzer). Exits non-zero on a crash, leaving
# the input in target/fuzz/crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
target="${2:-decode_message}"
host="$(rustc -vV | sed -n 's/^host: //p')"
flags=(
  --cfg fuzzing
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  -Cdebug-assertions
  -Coverflow-checks
)
# --target keeps the flags off build scripts and proc macros, as cargo-fuzz does.
RUSTFLAGS="${flags[*]}" cargo build -p capnweb-fuzz --bin "$target" \
  --target "$host" --target-dir target/fuzz
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
if [ "$target" = decode_message ]; then cp fuzz/seeds/* "$corpus"/; fi
# grep hides the progress lines; the fuzzer's own exit status decides (read before anything
# else runs: `|| true` would reset PIPESTATUS, and did, hiding crashes).
set +e
"target/fuzz/$host/debug/$target" "$corpus" \
  -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix=target/fuzz/ -print_final_stats=1 2>&1 |
  grep -Ev '^#[0-9]|NEW_FUNC'
status="${PIPESTATUS[0]}"
set -e
exit "$status"
