#!/usr/bin/env bash
# A local cluster on loopback: a throwaway PostgreSQL, N `functions serve` nodes on it and
# nginx in front (deploy/nginx.conf), for trying things out and for benchmarks.
#
#   bash scripts/cluster.sh start [N]   # N nodes (default 3); prints the URLs and the token
#   bash scripts/cluster.sh stop        # stops nginx, the nodes and PostgreSQL, removes state
#
# State lives in $CLUSTER_DIR (default /tmp/functions-cluster): env (source it for
# FUNCTIONS_URL, FUNCTIONS_ADMIN_TOKEN, FUNCTIONS_STORE and NODE_URLS), logs, pids.
# FUNCTIONS_BIN picks the binary (default: target/release/functions, built if missing);
# FUNCTIONS_ADMIN_TOKEN, if set, is the token (else a random one).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/functions-cluster}
source scripts/postgres.sh

free_port() { pg_free_port; }

wait_listening() { # URL
  for _ in $(seq 1 200); do
    curl -fsS "$1/_health" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$1 did not come up" >&2
  return 1
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

  local urls=() servers=""
  for i in $(seq 1 "$n"); do
    # Port 0: each node binds a free port itself and prints it.
    FUNCTIONS_ADMIN_TOKEN=$token FUNCTIONS_STORE=$store RUST_LOG=${RUST_LOG:-warn} \
      nohup "$bin" serve --listen "127.0.0.1:0" --data "$CLUSTER_DIR/node$i" \
      >"$CLUSTER_DIR/logs/node$i.log" 2>&1 &
    echo $! >>"$CLUSTER_DIR/node.pids"
  done
  for i in $(seq 1 "$n"); do
    local url=""
    for _ in $(seq 1 300); do
      url=$(sed -n 's/^listening on //p' "$CLUSTER_DIR/logs/node$i.log" | head -n 1)
      [ -n "$url" ] && break
      sleep 0.05
    done
    if [ -z "$url" ]; then
      echo "node $i did not start:" >&2
      cat "$CLUSTER_DIR/logs/node$i.log" >&2
      return 1
    fi
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
  if [ -e "$CLUSTER_DIR/node.pids" ]; then
    while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$CLUSTER_DIR/node.pids"
    while read -r pid; do
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done <"$CLUSTER_DIR/node.pids"
  fi
  pg_stop
  rm -rf "$CLUSTER_DIR"
  echo "stopped"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 start [N] | stop" >&2; exit 2 ;;
esac
