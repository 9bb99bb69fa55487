#!/usr/bin/env bash
# HTTP benchmark: Functions vs workerd (through its Worker Loader), measured with wrk in one run.
#
#   bash bench/http/run.sh
#
# Knobs (environment): DURATION (10s), WARMUP (2s), ROUNDS (3), THREADS (2), CONNECTIONS (50),
# FUNCTIONS_BIN (use this binary instead of building target/release/functions),
# KEEP=1 (keep the temporary directory with server logs and raw wrk output).
# All traffic goes to 127.0.0.1; every wrk run is bounded by its duration.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-50}
TOKEN=bench

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (apt)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi
for tool in curl node npm python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done

WORKERD="$HERE/node_modules/.bin/workerd"
want_workerd=$(node -p 'require(process.argv[1]).dependencies.workerd' "$HERE/package.json")
have_workerd=$(node -p 'try { require(process.argv[1]).version } catch { "" }' \
  "$HERE/node_modules/workerd/package.json" 2>/dev/null || true)
if [[ ! -x "$WORKERD" || "$have_workerd" != "$want_workerd" ]]; then
  say "installing workerd $want_workerd (npm ci)"
  (cd "$HERE" && npm ci --no-audit --no-fund >&2)
fi

GIVEN_BIN=${FUNCTIONS_BIN:-}
if [[ -z "${FUNCTIONS_BIN:-}" ]]; then
  say "building functions (release)"
  (cd "$ROOT" && cargo build --release -p server --bin functions >&2)
  FUNCTIONS_BIN="$ROOT/target/release/functions"
fi
[[ -x "$FUNCTIONS_BIN" ]] || die "no functions binary at $FUNCTIONS_BIN"

# --- servers ----------------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-http.XXXXXX")
FUNCTIONS_PID=""
WORKERD_PID=""
cleanup() {
  local rc=$?
  for pid in $FUNCTIONS_PID $WORKERD_PID; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $FUNCTIONS_PID $WORKERD_PID; do
    # bounded: SIGKILL whatever is still there after 5 s
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${KEEP:-}" == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting functions"
FUNCTIONS_ADMIN_TOKEN=$TOKEN "$FUNCTIONS_BIN" serve --listen 127.0.0.1:0 --data "$TMP/data" \
  >"$TMP/functions.out" 2>"$TMP/functions.err" &
FUNCTIONS_PID=$!
FN=""
for _ in $(seq 300); do
  FN=$(sed -n 's#^listening on http://\([0-9.:]*\).*#\1#p' "$TMP/functions.out" | head -n1)
  [[ -n "$FN" ]] && break
  kill -0 "$FUNCTIONS_PID" 2>/dev/null || { cat "$TMP/functions.err" >&2; die "functions exited"; }
  sleep 0.1
done
[[ -n "$FN" ]] || { cat "$TMP/functions.err" >&2; die "functions did not print its address"; }
case "$FN" in 127.0.0.1:*) ;; *) die "functions listens on $FN, not loopback" ;; esac

deploy() { # id file
  node -e 'const fs = require("fs");
    process.stdout.write(JSON.stringify({ mainModule: "index.js",
      modules: { "index.js": fs.readFileSync(process.argv[1], "utf8") } }))' "$2" |
    curl -sS --max-time 30 -X PUT -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' --data-binary @- \
      -o "$TMP/deploy-$1.json" -w '%{http_code}' "http://$FN/_admin/functions/$1" >"$TMP/deploy-$1.code"
  [[ $(cat "$TMP/deploy-$1.code") == 200 ]] ||
    die "deploy $1: HTTP $(cat "$TMP/deploy-$1.code"): $(cat "$TMP/deploy-$1.json")"
}
deploy hello "$HERE/hello.js"
deploy rpc "$HERE/rpc.js"

WD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WD="127.0.0.1:$WD_PORT"
say "starting workerd $("$WORKERD" --version 2>/dev/null | awk '{print $2}') on $WD"
"$WORKERD" serve --experimental "$HERE/workerd.capnp" --socket-addr "http=$WD" \
  >"$TMP/workerd.out" 2>"$TMP/workerd.err" &
WORKERD_PID=$!
for i in $(seq 300); do
  curl -s --max-time 2 -o /dev/null "http://$WD/hello/" && break
  kill -0 "$WORKERD_PID" 2>/dev/null || { cat "$TMP/workerd.err" >&2; die "workerd exited"; }
  [[ $i == 300 ]] && { cat "$TMP/workerd.err" >&2; die "workerd did not answer on $WD"; }
  sleep 0.1
done

# --- check the answers once -------------------------------------------------------------------
check() { # label expected curl-args...
  local label=$1 want=$2 got code
  shift 2
  got=$(curl -sS --max-time 10 -w '\n%{http_code}' "$@") || die "$label: curl failed"
  code=${got##*$'\n'}
  got=${got%$'\n'*}
  [[ "$code" == 200 ]] || die "$label: expected 200 '$want', got $code '$got'"
  if [[ "$got" != "$want" ]]; then
    # JSON answers: the same value in other bytes (5.0 for 5) is a warning, anything else fails
    node -e 'const a = JSON.parse(process.argv[1]), b = JSON.parse(process.argv[2]);
      process.exit(require("util").isDeepStrictEqual(a, b) ? 0 : 1)' "$got" "$want" 2>/dev/null ||
      die "$label: expected 200 '$want', got $code '$got'"
    say "WARNING $label: '$got' is the expected value but not the expected bytes '$want'"
  fi
  say "$label: 200 $got"
}
RPC_ARGS=(-X POST -H 'Content-Type: application/json' -H 'X-RPC-Method: add' --data-binary '[2,3]')
check "functions fetch" 'Hello, world!' "http://$FN/hello/"
check "workerd fetch" 'Hello, world!' "http://$WD/hello/"
check "functions X-RPC-Method" '{"result":5}' "${RPC_ARGS[@]}" "http://$FN/rpc/"
check "workerd X-RPC-Method" '{"result":5}' "${RPC_ARGS[@]}" "http://$WD/rpc/"

# --- load -------------------------------------------------------------------------------------
# One wrk run: warm-up (discarded), then the measured run with --latency into $TMP/<key>.<round>,
# and the server's CPU time (user + system, all threads) over the measured run into .cpu.
# Also the CPU time everything else on the machine used meanwhile (busy time from /proc/stat,
# less the server's, less wrk's from the `times` builtin), as a noise indicator, into .other.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
child_ticks() { # user + system time of the shell's finished children, from a saved `times`
  awk -v hz="$(getconf CLK_TCK)" 'NR == 2 { t = 0
    for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
    printf "%d\n", t * hz }' "$1"
}
bench() { # key round pid url [lua]
  local key=$1 round=$2 pid=$3 url=$4 lua=${5:-}
  local script=() t0 t1
  [[ -n "$lua" ]] && script=(-s "$lua")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${script[@]}" "$url" >/dev/null
  local b0 c0 b1 c1
  times >"$TMP/times0" # not in a subshell: a subshell's `times` would not see wrk
  t0=$(cpu_ticks "$pid") b0=$(busy_ticks)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${script[@]}" "$url" \
    >"$TMP/$key.$round"
  times >"$TMP/times1"
  t1=$(cpu_ticks "$pid") b1=$(busy_ticks)
  c0=$(child_ticks "$TMP/times0") c1=$(child_ticks "$TMP/times1")
  echo $((t1 - t0)) >"$TMP/$key.$round.cpu"
  echo $((b1 - b0 - (t1 - t0) - (c1 - c0))) >"$TMP/$key.$round.other"
  say "round $round $key: $(awk '/^Requests\/sec/ {print $2 " req/s"}' "$TMP/$key.$round")"
}
KEYS=(functions-fetch workerd-fetch functions-rpc workerd-rpc)
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD_BEFORE" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  say "WARNING load average is $LOAD_BEFORE on $(nproc) cores: something else is running, figures will be noisy"
fi
for round in $(seq "$ROUNDS"); do
  bench functions-fetch "$round" "$FUNCTIONS_PID" "http://$FN/hello/"
  bench workerd-fetch "$round" "$WORKERD_PID" "http://$WD/hello/"
  bench functions-rpc "$round" "$FUNCTIONS_PID" "http://$FN/rpc/" "$HERE/rpc.lua"
  bench workerd-rpc "$round" "$WORKERD_PID" "http://$WD/rpc/" "$HERE/rpc.lua"
done

# --- report -----------------------------------------------------------------------------------
# wrk's latency ("812.00us", "1.20ms", "1.01s", "2.00m") in milliseconds
to_ms() { awk -v v="$1" 'BEGIN {
  n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
  printf "%.3f", n }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
  if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

TCK=$(getconf CLK_TCK)
# what everything else used during the measured runs, in % of the machine
OTHER=$(cat "$TMP"/*.other | awk -v n="$(nproc)" -v hz="$TCK" -v runs="$((ROUNDS * ${#KEYS[@]}))" \
  -v d="$DURATION" '{ t += $1 } END { d += 0; printf "%.0f%%", 100 * t / (runs * d * hz * n) }')
declare -A RPS P50 P99 BAD CPU
for key in "${KEYS[@]}"; do
  rps=() p50=() p99=() cpu=() bad=0
  for round in $(seq "$ROUNDS"); do
    f="$TMP/$key.$round"
    rps+=("$(awk '/^Requests\/sec/ {print $2}' "$f")")
    p50+=("$(to_ms "$(awk '$1 == "50%" {print $2}' "$f")")")
    p99+=("$(to_ms "$(awk '$1 == "99%" {print $2}' "$f")")")
    # server CPU per request, in microseconds
    cpu+=("$(awk -v t="$(cat "$f.cpu")" -v hz="$TCK" '/ requests in / {
      printf "%.1f", t * 1e6 / hz / $1 }' "$f")")
    n=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$f")
    s=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$f")
    bad=$((bad + ${n:-0} + ${s:-0}))
    if [[ -n "$n" || -n "$s" ]]; then
      say "WARNING $key round $round: $(grep -E 'Non-2xx|Socket errors' "$f" | xargs)"
    fi
  done
  RPS[$key]=$(median "${rps[@]}")
  P50[$key]=$(median "${p50[@]}")
  P99[$key]=$(median "${p99[@]}")
  CPU[$key]=$(median "${cpu[@]}")
  BAD[$key]=$bad
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "n/a" }'; }
FETCH_RATIO=$(ratio "${RPS[functions-fetch]}" "${RPS[workerd-fetch]}")
RPC_RATIO=$(ratio "${RPS[functions-rpc]}" "${RPS[workerd-rpc]}")

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
  commit="$commit + uncommitted changes in crates/"
fi
[[ -n "$GIVEN_BIN" ]] && commit="the given binary $GIVEN_BIN (work tree at $commit)"
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
row() { # label key ratio
  printf '| %s | %.0f | %.2f ms | %.2f ms | %.1f µs | %s | %s |\n' "$1" "${RPS[$2]}" "${P50[$2]}" \
    "${P99[$2]}" "${CPU[$2]}" "${BAD[$2]}" "$3"
}
{
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores ($cpu), functions at $commit," \
    "workerd $("$WORKERD" --version | awk '{print $2}'), $(wrk -v 2>&1 | head -n1 | awk '{print $1 " " $2}')," \
    "-t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS interleaved rounds," \
    "load average $LOAD_BEFORE before; other processes used $OTHER of the machine during the measured runs"
  echo
  echo "| server, call | req/s | p50 | p99 | server CPU / req | non-2xx + socket errors | functions/workerd req/s |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  row "functions fetch" functions-fetch "$FETCH_RATIO"
  row "workerd fetch" workerd-fetch ""
  row "functions X-RPC-Method" functions-rpc "$RPC_RATIO"
  row "workerd X-RPC-Method" workerd-rpc ""
  echo
  echo "req/s, functions/workerd: fetch $FETCH_RATIO, X-RPC-Method $RPC_RATIO (goal ≥ 5×, aim 10×)." \
    "Server CPU per request, workerd/functions: fetch $(ratio "${CPU[workerd-fetch]}" "${CPU[functions-fetch]}")," \
    "X-RPC-Method $(ratio "${CPU[workerd-rpc]}" "${CPU[functions-rpc]}")."
}
