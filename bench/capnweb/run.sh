#!/usr/bin/env bash
# capnweb: our Rust implementation vs the official capnweb npm package, as server and client.
#
#   bash bench/capnweb/run.sh
#
# Builds the capnweb examples (release), starts the Rust interop server and the Node
# reference server on free ports, runs the Rust load generator (examples/loadgen.rs) and the
# Node client (node_client.mjs) against each, BENCH_REPS times per pair (default 3), and prints
# a Markdown table of per-pair medians. Exits 1 if any call failed or returned a wrong result.
#
# Environment: BENCH_REPS (default 3); BENCH_ARGS, extra options passed to both clients
# (e.g. "--seq-calls 1000 --duration 1"); LOADGEN_ARGS, extra options for the Rust client only
# (e.g. "--threads 2"); RUST_SERVER_THREADS, tokio worker threads of the Rust server (default:
# tokio's default, one per core); BENCH_KEEP=1 keeps the raw JSON lines (path printed at the end).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/capnweb"
REPS="${BENCH_REPS:-3}"
read -r -a EXTRA <<<"${BENCH_ARGS:-}"
read -r -a RUST_EXTRA <<<"${LOADGEN_ARGS:-}"
cd "$ROOT"

TMP="$(mktemp -d)"
RS_PID=""
NS_PID=""
cleanup() {
  for pid in $RS_PID $NS_PID; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $RS_PID $NS_PID; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
    echo "raw results kept in $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

echo "building release examples..." >&2
cargo build --release -q -p capnweb --examples
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples"

if [[ ! -d tests/interop/node_modules/capnweb || ! -d tests/interop/node_modules/ws ]]; then
  echo "installing tests/interop node_modules (npm ci)..." >&2
  (cd tests/interop && npm ci --silent)
fi

# wait_port OUT PID: waits for `listening on PORT` in OUT and prints PORT.
wait_port() {
  local out="$1" pid="$2"
  for _ in $(seq 1 200); do
    if grep -q '^listening on ' "$out" 2>/dev/null; then
      awk '/^listening on /{print $3; exit}' "$out"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.05
  done
  echo "server failed to start; its output:" >&2
  cat "$out" "$out.err" >&2 || true
  return 1
}

if [[ -n "${RUST_SERVER_THREADS:-}" ]]; then
  export TOKIO_WORKER_THREADS="$RUST_SERVER_THREADS"
fi
"$BIN/interop_server" --port 0 >"$TMP/rs.out" 2>"$TMP/rs.out.err" &
unset TOKIO_WORKER_THREADS
RS_PID=$!
node tests/interop/ref_server.mjs --port 0 >"$TMP/ns.out" 2>"$TMP/ns.out.err" &
NS_PID=$!
RS_PORT="$(wait_port "$TMP/rs.out" "$RS_PID")"
NS_PORT="$(wait_port "$TMP/ns.out" "$NS_PID")"
echo "Rust interop server on $RS_PORT, Node reference server on $NS_PORT" >&2

url_of() { [[ "$1" == rust ]] && echo "ws://127.0.0.1:$RS_PORT/" || echo "ws://127.0.0.1:$NS_PORT/"; }

# run_client SERVER CLIENT [ARGS...]: prints the client's JSON line (or nothing if it crashed).
run_client() {
  local server="$1" client="$2"
  shift 2
  local url
  url="$(url_of "$server")"
  if [[ "$client" == rust ]]; then
    "$BIN/loadgen" --url "$url" --label "$server-$client" "$@" ${RUST_EXTRA[@]+"${RUST_EXTRA[@]}"} || true
  else
    node "$HERE/node_client.mjs" --url "$url" --label "$server-$client" "$@" || true
  fi
}

# Warm both servers up (JIT, allocator) with a short unrecorded run of each client.
WARM=(--seq-calls 500 --chain-reps 50 --concurrent-reps 2 --duration 0.5)
for server in node rust; do
  for client in node rust; do
    run_client "$server" "$client" "${WARM[@]}" >/dev/null
  done
done

START=$(date +%s)
: >"$TMP/results.tsv"
for rep in $(seq 1 "$REPS"); do
  # Interleave the pairs, so that background load on the machine hits all of them alike.
  for pair in node-node rust-node node-rust rust-rust; do
    server="${pair%-*}"
    client="${pair#*-}"
    echo "run $rep/$REPS: $server server, $client client" >&2
    line="$(run_client "$server" "$client" ${EXTRA[@]+"${EXTRA[@]}"} | tail -n 1)"
    printf '%s\t%s\n' "$pair" "${line:-crashed}" >>"$TMP/results.tsv"
  done
done
END=$(date +%s)

echo
echo "capnweb benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, node $(node --version)," \
  "$(rustc --version | cut -d' ' -f1-2), load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "median of $REPS runs per pair ($((END - START)) s)${RUST_SERVER_THREADS:+, Rust server with $RUST_SERVER_THREADS worker threads}"
echo
python3 "$HERE/table.py" "$TMP/results.tsv"
