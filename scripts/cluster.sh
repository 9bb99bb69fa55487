#!/usr/bin/env bash
# A local cluster on loopback: a throwaway PostgreSQL, N `functions serve` nodes on it and
# nginx in front (deploy/nginx.conf), for trying things out and for benchmarks.
#
#   bash scripts/cluster.sh start [N]   # N nodes (default 3); prints the URLs and the token
#   bash scripts/cluster.sh stop        # stops nginx, the nodes and PostgreSQL, removes state
#   bash scripts/cluster.sh restart-node I   # (re)starts node I on its port and data directory
#                                            # (after a crash: it rejoins nginx and the registry)
#
# State lives in $CLUSTER_DIR (default /tmp/functions-cluster): env (source it for
# FUNCTIONS_URL, FUNCTIONS_ADMIN_TOKEN, FUNCTIONS_STORE and NODE_URLS), logs, pids.
# FUNCTIONS_BIN picks the binary (default: target/release/functions, built if missing);
# FUNCTIONS_ADMIN_TOKEN, if set, is the token (else a random one). Node I listens on the
# port in $CLUSTER_DIR/nodeI.port (kept across restarts, so nginx finds it again); its pid
# is in nodeI.pid.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/functions-cluster}
source scripts/postgres.sh
# The cluster's PostgreSQL is its own: pg_stop must not also stop (and delete) a server the
# caller started, such as the TLS-only one .ci/run exports as PG_TLS_DIR for the store tests.
unset PG_DIR PG_TLS_DIR

free_port() { pg_free_port; }

wait_listening() { # URL
  for _ in $(seq 1 200); do
    curl -fsS "$1/_health" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$1 did not come up" >&2
  return 1
}

# Starts node $1 on the port in node$1.port (another free one if that is taken on a first
# start) and waits until it answers.
start_node() {
  local i=$1 tries=0
  local bin=${FUNCTIONS_BIN:-$ROOT/target/release/functions}
  # shellcheck disable=SC1091
  source "$CLUSTER_DIR/env"
  while :; do
    local port
    port=$(cat "$CLUSTER_DIR/node$i.port")
    RUST_LOG=${RUST_LOG:-warn} nohup "$bin" serve --listen "127.0.0.1:$port" \
      --data "$CLUSTER_DIR/node$i" >>"$CLUSTER_DIR/logs/node$i.log" 2>&1 &
    echo $! >"$CLUSTER_DIR/node$i.pid"
    if wait_listening "http://127.0.0.1:$port" 2>/dev/null; then
      return 0
    fi
    kill -0 "$(cat "$CLUSTER_DIR/node$i.pid")" 2>/dev/null && break
    tries=$((tries + 1))
    if [ "$tries" -ge 5 ] || [ -n "${RESTART:-}" ]; then break; fi
    free_port >"$CLUSTER_DIR/node$i.port" # the port was taken: another
  done
  echo "node $i did not start:" >&2
  cat "$CLUSTER_DIR/logs/node$i.log" >&2
  return 1
}

restart_node() {
  local i=$1
  [ -e "$CLUSTER_DIR/node$i.port" ] || { echo "no node $i in $CLUSTER_DIR" >&2; exit 1; }
  local pid
  pid=$(cat "$CLUSTER_DIR/node$i.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  RESTART=1 start_node "$i"
  echo "node $i: http://127.0.0.1:$(cat "$CLUSTER_DIR/node$i.port")"
}

start() {
  local n=${1:-3}
  if [ -e "$CLUSTER_DIR/env" ]; then
    echo "a cluster is already running ($CLUSTER_DIR); stop it first" >&2
    exit 1
  fi
  mkdir -p "$CLUSTER_DIR/nginx/tmp" "$CLUSTER_DIR/logs"
  local bin=${FUNCTIONS_BIN:-$ROOT/target/release/functions}
  if [ ! -x "$bin" ]; then
    cargo build --release -p server --bin functions
  fi
  command -v nginx >/dev/null || apt_install_without_services nginx

  pg_start >/dev/null
  local token store
  token=${FUNCTIONS_ADMIN_TOKEN:-$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')}
  store=$FUNCTIONS_TEST_POSTGRES
  {
    echo "export PG_DIR=$PG_DIR PG_BINDIR=$PG_BINDIR"
    echo "export FUNCTIONS_ADMIN_TOKEN=$token"
    echo "export FUNCTIONS_STORE='$store'"
  } >"$CLUSTER_DIR/env"
  echo "$n" >"$CLUSTER_DIR/nodes"

  local urls=() servers=""
  for i in $(seq 1 "$n"); do
    free_port >"$CLUSTER_DIR/node$i.port"
    start_node "$i"
    local url
    url="http://127.0.0.1:$(cat "$CLUSTER_DIR/node$i.port")"
    urls+=("$url")
    servers+="        server ${url#http://} max_fails=3 fail_timeout=10s;\n"
  done
  for u in "${urls[@]}"; do wait_listening "$u"; done

  local front tries=0
  while :; do
    front=$(free_port)
    awk -v servers="$servers" -v listen="        listen 127.0.0.1:$front;" '
      /# NODES/ { printf "%s", servers; skip = 1; next }
      /# END NODES/ { skip = 0; next }
      /# LISTEN/ { print listen; getline; next }
      !skip { print }
    ' deploy/nginx.conf >"$CLUSTER_DIR/nginx/nginx.conf"
    nginx -p "$CLUSTER_DIR/nginx" -c nginx.conf -t -q
    # The port may be taken between the check and the bind: try another.
    nginx -p "$CLUSTER_DIR/nginx" -c nginx.conf 2>>"$CLUSTER_DIR/logs/nginx-start.log" && break
    tries=$((tries + 1))
    [ "$tries" -lt 5 ] || { cat "$CLUSTER_DIR/logs/nginx-start.log" >&2; return 1; }
  done
  wait_listening "http://127.0.0.1:$front"
  {
    echo "export FUNCTIONS_URL=http://127.0.0.1:$front"
    echo "export NODE_URLS='${urls[*]}'"
  } >>"$CLUSTER_DIR/env"
  echo "nginx:  http://127.0.0.1:$front"
  echo "nodes:  ${urls[*]}"
  echo "token:  $token"
  echo "env:    source $CLUSTER_DIR/env"
}

stop() {
  [ -e "$CLUSTER_DIR/env" ] || { echo "no cluster in $CLUSTER_DIR"; return 0; }
  # shellcheck disable=SC1091
  source "$CLUSTER_DIR/env"
  if [ -e "$CLUSTER_DIR/nginx/nginx.pid" ]; then
    nginx -p "$CLUSTER_DIR/nginx" -c nginx.conf -s quit || true
  fi
  local f pid
  for f in "$CLUSTER_DIR"/node*.pid; do
    [ -e "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$CLUSTER_DIR"/node*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  pg_stop
  rm -rf "$CLUSTER_DIR"
  echo "stopped"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  restart-node) shift; restart_node "${1:?usage: $0 restart-node I}" ;;
  *) echo "usage: $0 start [N] | stop | restart-node I" >&2; exit 2 ;;
esac
