#!/usr/bin/env bash
# Metrics memory with nobody scraping: a `functions serve` (release) answers capnweb calls
# over /_rpc for SOAK_SECONDS while its RSS is sampled every second from /proc; /_metrics is
# never read. Prints the RSS curve (every tenth sample), RSS at 10 % of the run and at the
# end, and their ratio (the goal: <= 1.05).
#
#   bash bench/soak/metrics.sh                 # 60 s
#   SOAK_SECONDS=300 bash bench/soak/metrics.sh
#
# The load is crates/capnweb/examples/loadgen (throughput mode: 64 calls in flight, over
# several connections in turn) against a function with `add` and `square`.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TOTAL=${SOAK_SECONDS:-60}
ROUND=${SOAK_ROUND:-5}   # seconds per loadgen run (a new session each run)

cargo build -q --release -p server --bin functions
cargo build -q --release -p capnweb --example loadgen

work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/fns/sq"
cat > "$work/fns/sq/index.js" <<'JS'
import { RpcTarget } from "cloudflare:workers";
class Api extends RpcTarget {
  add(a, b) { return a + b; }
  square(x) { return x * x; }
}
export default { fetch() { return new Response("sq"); }, rpc: Api };
JS
echo '{"id":"sq","main":"index.js"}' > "$work/fns/sq/function.json"

FUNCTIONS_ADMIN_TOKEN=soak target/release/functions serve --listen 127.0.0.1:0 \
  --data "$work/data" --deploy "$work/fns" > "$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$work/out" 2>/dev/null && break
  sleep 0.1
done
addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$work/out" | head -1)
[ -n "$addr" ] || { cat "$work/err"; exit 1; }

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
: > "$work/rss"
( while kill -0 $pid 2>/dev/null; do echo "$(date +%s.%N) $(rss_kib)" >> "$work/rss"; sleep 1; done ) &
sampler=$!

calls=0
end=$(( $(date +%s) + SECONDS_TOTAL ))
while [ "$(date +%s)" -lt "$end" ]; do
  out=$(target/release/examples/loadgen --url "ws://$addr/_rpc/sq" --seq-calls 0 --warmup 0 \
        --chain-reps 0 --concurrent 1 --concurrent-reps 1 --duration "$ROUND")
  n=$(echo "$out" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(int(d.get("throughput_calls", d.get("calls", 0))))' 2>/dev/null || echo 0)
  calls=$((calls + n))
done
kill $sampler 2>/dev/null || true

python3 - "$work/rss" "$calls" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 2]
t0 = float(rows[0][0])
pts = [(float(t) - t0, int(k)) for t, k in rows]
print(f"calls made: {int(sys.argv[2]):,}")
print("| t (s) | RSS (MiB) |")
print("|---:|---:|")
for t, k in pts[:: max(1, len(pts) // 10)]:
    print(f"| {t:.0f} | {k / 1024:.1f} |")
at10 = pts[max(0, len(pts) // 10)][1]
last = pts[-1][1]
print(f"\nRSS at 10 %: {at10 / 1024:.1f} MiB, at the end: {last / 1024:.1f} MiB, ratio {last / at10:.3f} (goal <= 1.05)")
PY
