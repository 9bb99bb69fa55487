#!/usr/bin/env bash
# Cluster benchmark: 1, 2 and 3 nodes on one PostgreSQL behind nginx (scripts/cluster.sh),
# measured with wrk in one run.
#
#   bash bench/cluster/run.sh
#
# Prints three tables:
#  1. fetch and X-RPC-Method load through nginx, spread over FUNCTIONS functions (the
#     consistent hash sends each function to one node): requests/s, p99, and requests per
#     node CPU-second (user + system of every node process, from /proc/PID/stat). wrk, nginx,
#     PostgreSQL and the nodes share this machine's cores, so requests/s cannot grow with
#     nodes here; requests per node CPU-second shows what each node costs.
#  2. KV latency through one node, one connection: a request that reads a key, writes one,
#     or touches no KV (the baseline), on PostgreSQL and on the embedded store (redb).
#  3. Deploy to every node serving the new version (3 nodes), from the deploy's answer.
#
# Knobs: NODES ("1 2 3"), FUNCTIONS (12), DURATION (10s), WARMUP (2s), ROUNDS (2),
# CONNECTIONS (64), THREADS (2), KV_DURATION (5s), PROPAGATION_ROUNDS (30),
# FUNCTIONS_BIN (default: build target/release/functions), KEEP=1 keeps the state.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NODES=${NODES:-1 2 3}
FUNCTIONS=${FUNCTIONS:-12}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
KV_DURATION=${KV_DURATION:-5s}
export FUNCTIONS

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || { say "installing wrk (apt)"; apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2; }
if [[ -z "${FUNCTIONS_BIN:-}" ]]; then
  say "building functions (release)"
  (cd "$ROOT" && cargo build --release -p server --bin functions >&2)
  FUNCTIONS_BIN="$ROOT/target/release/functions"
fi
export FUNCTIONS_BIN
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-cluster.XXXXXX")
export FUNCTIONS_ADMIN_TOKEN=bench-cluster
SOLO_PID=""
cleanup() {
  local rc=$?
  for d in "$TMP"/c*; do
    [[ -e "$d/env" ]] && CLUSTER_DIR=$d bash "$ROOT/scripts/cluster.sh" stop >/dev/null 2>&1
  done
  [[ -n "$SOLO_PID" ]] && kill "$SOLO_PID" 2>/dev/null && wait "$SOLO_PID" 2>/dev/null
  if [[ "${KEEP:-}" == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bundle() { # file [bindings-json]
  node -e 'const fs = require("fs");
    process.stdout.write(JSON.stringify({ mainModule: "index.js",
      modules: { "index.js": fs.readFileSync(process.argv[1], "utf8") },
      bindings: JSON.parse(process.argv[2] || "{}") }))' "$1" "${2:-}"
}
deploy() { # base id file [bindings]
  local code
  code=$(bundle "$3" "${4:-}" | curl -sS --max-time 30 -X PUT \
    -H "Authorization: Bearer $FUNCTIONS_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    --data-binary @- -o "$TMP/deploy.out" -w '%{http_code}' "$1/_admin/functions/$2")
  [[ "$code" == 200 ]] || die "deploy $2: HTTP $code $(cat "$TMP/deploy.out")"
}
node_ticks() { # cluster-dir: user+system ticks of every node process
  local t=0 f
  for f in "$1"/node*.pid; do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$(cat "$f")/stat")))
  done
  echo "$t"
}
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
  printf "%.2f", n }'; }
TCK=$(getconf CLK_TCK)

# --- 1. throughput per node count -------------------------------------------------------------
declare -A ROW
for n in $NODES; do
  dir="$TMP/c$n"
  say "starting $n node(s)"
  CLUSTER_DIR=$dir bash "$ROOT/scripts/cluster.sh" start "$n" >"$TMP/start-$n.log" 2>&1 ||
    { cat "$TMP/start-$n.log" >&2; die "cluster of $n did not start"; }
  front=$(sed -n "s/^export FUNCTIONS_URL=//p" "$dir/env")
  for i in $(seq "$FUNCTIONS"); do
    deploy "$front" "hello-$i" "$ROOT/bench/http/hello.js"
    deploy "$front" "rpc-$i" "$ROOT/bench/http/rpc.js"
  done
  [[ $(curl -sS "$front/hello-1/") == "Hello, world!" ]] || die "hello-1 answers"
  [[ $(curl -sS -X POST -H 'X-RPC-Method: add' --data-binary '[2,3]' "$front/rpc-1/") == '{"result":5}' ]] ||
    die "rpc-1 answers"
  for mode in fetch rpc; do
    prefix=hello; [[ $mode == rpc ]] && prefix=rpc
    for round in $(seq "$ROUNDS"); do
      PREFIX=$prefix MODE=$mode wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" \
        -s "$HERE/spread.lua" "$front" >/dev/null
      t0=$(node_ticks "$dir")
      PREFIX=$prefix MODE=$mode wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -s "$HERE/spread.lua" "$front" >"$TMP/$mode-$n-$round.wrk"
      t1=$(node_ticks "$dir")
      echo $((t1 - t0)) >"$TMP/$mode-$n-$round.cpu"
      say "$n node(s) $mode round $round: $(awk '/^Requests\/sec/ {print $2}' "$TMP/$mode-$n-$round.wrk") req/s"
    done
    # the median round by requests/s
    best=$(for r in $(seq "$ROUNDS"); do
      echo "$(awk '/^Requests\/sec/ {print $2}' "$TMP/$mode-$n-$r.wrk") $r"; done | sort -g |
      awk '{ a[NR] = $2 } END { print a[int((NR + 1) / 2)] }')
    f="$TMP/$mode-$n-$best.wrk"
    rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$f")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$f")")
    reqs=$(awk '/ requests in / {print $1}' "$f")
    bad=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$f"); bad=${bad:-0}
    per_cpu=$(awk -v r="$reqs" -v t="$(cat "$TMP/$mode-$n-$best.cpu")" -v hz="$TCK" 'BEGIN { printf "%.0f", r / (t / hz) }')
    ROW[$mode-$n]="| $n | $mode | $rps | $p99 | $per_cpu | $bad |"
  done
  if [[ $n == 1 ]]; then
    # --- 2a. KV latency on PostgreSQL, through the node itself ----------------------------
    node_url=$(sed -n "s/^export NODE_URLS='\(.*\)'/\1/p" "$dir/env")
    deploy "$node_url" kv "$HERE/kv.js" '{"KV":{"type":"kv","namespace":"bench"}}'
    for op in put get none; do
      OP=$op wrk -t1 -c1 -d"$KV_DURATION" --latency -s "$HERE/kv.lua" "$node_url" >"$TMP/kv-pg-$op.wrk"
    done
  fi
  if [[ $n == 3 ]]; then
    # --- 3. deploy propagation ---------------------------------------------------------------
    read -r -a urls <<<"$(sed -n "s/^export NODE_URLS='\(.*\)'/\1/p" "$dir/env")"
    ROUNDS=${PROPAGATION_ROUNDS:-30} node "$HERE/propagation.mjs" "$FUNCTIONS_ADMIN_TOKEN" "${urls[@]}" \
      >"$TMP/propagation.json"
  fi
  CLUSTER_DIR=$dir bash "$ROOT/scripts/cluster.sh" stop >/dev/null
done

# --- 2b. KV latency on the embedded store --------------------------------------------------------
say "starting one node on the embedded store"
"$FUNCTIONS_BIN" serve --listen 127.0.0.1:0 --data "$TMP/solo" >"$TMP/solo.out" 2>"$TMP/solo.err" &
SOLO_PID=$!
solo=""
for _ in $(seq 300); do
  solo=$(sed -n 's/^listening on //p' "$TMP/solo.out" | head -n1); [[ -n "$solo" ]] && break; sleep 0.1
done
[[ -n "$solo" ]] || die "the embedded-store node did not start: $(cat "$TMP/solo.err")"
deploy "$solo" kv "$HERE/kv.js" '{"KV":{"type":"kv","namespace":"bench"}}'
for op in put get none; do
  OP=$op wrk -t1 -c1 -d"$KV_DURATION" --latency -s "$HERE/kv.lua" "$solo" >"$TMP/kv-redb-$op.wrk"
done

# --- report ----------------------------------------------------------------------------------------
echo
echo "## Through nginx, $FUNCTIONS functions of each kind, $CONNECTIONS connections, median of $ROUNDS × $DURATION ($(nproc) cores shared by wrk, nginx, PostgreSQL and the nodes)"
echo
echo "| nodes | workload | req/s | p99 (ms) | req per node CPU-second | non-2xx |"
echo "|---:|---|---:|---:|---:|---:|"
for n in $NODES; do for mode in fetch rpc; do echo "${ROW[$mode-$n]}"; done; done
if [[ -e "$TMP/kv-pg-get.wrk" ]]; then
  echo
  echo "## KV through one node, one connection, $KV_DURATION each (latency of the whole HTTP request)"
  echo
  echo "| store | request | req/s | p50 (ms) | p99 (ms) | non-2xx |"
  echo "|---|---|---:|---:|---:|---:|"
  for store in redb pg; do for op in none get put; do
    f="$TMP/kv-$store-$op.wrk"
    bad=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$f"); bad=${bad:-0}
    name=$store; [[ $store == pg ]] && name=postgresql
    echo "| $name | $op | $(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$f") | $(to_ms "$(awk '$1 == "50%" {print $2}' "$f")") | $(to_ms "$(awk '$1 == "99%" {print $2}' "$f")") | $bad |"
  done; done
fi
if [[ -e "$TMP/propagation.json" ]]; then
  echo
  echo "## Deploy through node 1 → all 3 nodes serve it (from the deploy's answer)"
  echo
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`| samples | p50 (ms) | p99 (ms) | max (ms) |\n|---:|---:|---:|---:|\n| ${r.samples_ms.length} | ${r.p50_ms} | ${r.p99_ms} | ${r.max_ms} |`)' "$TMP/propagation.json"
fi
