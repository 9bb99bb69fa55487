#!/usr/bin/env bash
# Fairness bench: an unrelated function's latency while N tenants spin at their CPU limit.
#
#   bash bench/fairness/run.sh
#
# Starts a release `functions serve` on 127.0.0.1, deploys `neighbour` (answers "ok") and N
# spinners (`fetch() { for (;;) {} }`, limits.cpuMs = CPU_MS), keeps one request in flight per
# spinner, and times the neighbour's requests, sent one after the other. Prints a table of the
# neighbour's latency without spinners and with them (client.mjs prints the raw JSON line).
#
# Knobs (environment): SPINNERS (4), CPU_MS (1000), DURATION (20, seconds with spinners),
# IDLE_DURATION (3), ROUNDS (1), FUNCTIONS_BIN (use this binary instead of building
# target/release/functions), SERVE_ARGS (extra `serve` flags), KEEP=1 (keep the temporary
# directory with the server's logs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SPINNERS=${SPINNERS:-4}
CPU_MS=${CPU_MS:-1000}
DURATION=${DURATION:-20}
IDLE_DURATION=${IDLE_DURATION:-3}
ROUNDS=${ROUNDS:-1}
TOKEN=bench

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node is needed"
if [[ -z "${FUNCTIONS_BIN:-}" ]]; then
  say "building functions (release)"
  (cd "$ROOT" && cargo build --release -p server --bin functions >&2)
  FUNCTIONS_BIN="$ROOT/target/release/functions"
fi
[[ -x "$FUNCTIONS_BIN" ]] || die "no functions binary at $FUNCTIONS_BIN"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-fairness.XXXXXX")
PID=""
cleanup() {
  local rc=$?
  if [[ -n "$PID" ]]; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [[ "${KEEP:-}" == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for round in $(seq "$ROUNDS"); do
  say "round $round: starting functions"
  rm -rf "$TMP/data"
  # shellcheck disable=SC2086
  FUNCTIONS_ADMIN_TOKEN=$TOKEN "$FUNCTIONS_BIN" serve --listen 127.0.0.1:0 --data "$TMP/data" \
    ${SERVE_ARGS:-} >"$TMP/functions.out" 2>"$TMP/functions.err" &
  PID=$!
  ADDR=""
  for _ in $(seq 300); do
    ADDR=$(sed -n 's#^listening on http://\([0-9.:]*\).*#\1#p' "$TMP/functions.out" | head -n1)
    [[ -n "$ADDR" ]] && break
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/functions.err" >&2; die "functions exited"; }
    sleep 0.1
  done
  [[ -n "$ADDR" ]] || die "functions did not print its address"
  say "round $round: $SPINNERS spinners at cpuMs=$CPU_MS for ${DURATION}s on $(nproc) cores"
  node "$HERE/client.mjs" --url "http://$ADDR" --token "$TOKEN" --spinners "$SPINNERS" \
    --cpu-ms "$CPU_MS" --duration "$DURATION" --idle-duration "$IDLE_DURATION" | tee -a "$TMP/results.jsonl"
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
done

node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const f = (v) => (v === null ? "-" : String(v));
  console.log("| round | neighbour alone p50 / p99 ms | with spinners n | p50 ms | p90 ms | p99 ms | max ms | neighbour failures | spinner answers |");
  console.log("|---:|---:|---:|---:|---:|---:|---:|---|---|");
  rows.forEach((r, i) => {
    const a = r.neighbour_idle_ms, b = r.neighbour_with_spinners_ms;
    const st = Object.entries(r.spinner_statuses).map(([k, v]) => `${v}× ${k}`).join(", ");
    const fails = Object.entries({ ...a.errors, ...b.errors }).map(([k, v]) => `${v}× ${k}`).join(", ") || "0";
    console.log(`| ${i + 1} | ${f(a.p50)} / ${f(a.p99)} | ${b.n} | ${f(b.p50)} | ${f(b.p90)} | ${f(b.p99)} | ${f(b.max)} | ${fails} | ${st} |`);
  });
' "$TMP/results.jsonl"
