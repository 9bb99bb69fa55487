#!/usr/bin/env bash
# A throwaway PostgreSQL for tests and local clusters: Debian's `postgresql` binaries run as
# the `postgres` user (runuser) in a temporary data directory, on a free loopback port, with a
# random password. No system service, no container.
#
#   source scripts/postgres.sh && pg_start     # exports FUNCTIONS_TEST_POSTGRES (a URL) and PG_DIR
#   pg_stop                                    # stops it and removes the data directory
#
# Run as root (CI, this machine) or as any user who can run initdb (then without runuser).
# `pg_start` installs the `postgresql` package with apt-get when its binaries are missing.

# apt-get install that starts no service: Debian's postinst scripts start a package's daemon
# (a `main` PostgreSQL cluster, nginx on port 80) unless policy-rc.d says no.
apt_install_without_services() {
  local made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  local status=$?
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  return $status
}

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && echo "$dir"
}

pg_free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# Runs a command as the postgres user when we are root, else as ourselves.
pg_as() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_start() {
  local bindir port password
  bindir=$(pg_bindir) || true
  if [ -z "$bindir" ]; then
    apt_install_without_services postgresql
    bindir=$(pg_bindir)
  fi
  PG_DIR=$(mktemp -d /tmp/functions-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
  password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  printf '%s\n' "$password" >"$PG_DIR/pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR/pwfile"
  pg_as "$bindir/initdb" -D "$PG_DIR/data" -U postgres --pwfile="$PG_DIR/pwfile" \
    --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
    { cat "$PG_DIR/initdb.log" >&2; return 1; }
  rm -f "$PG_DIR/pwfile"
  # A free port can be taken between the check and the bind (other tests start servers
  # too): try a few.
  local tries=0
  while :; do
    port=$(pg_free_port)
    # fsync stays on: the tests prove that acknowledged writes survive.
    if pg_as "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start \
      -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null; then
      break
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 5 ]; then
      cat "$PG_DIR/postgres.log" >&2
      return 1
    fi
  done
  PG_BINDIR=$bindir
  export PG_DIR PG_BINDIR
  export FUNCTIONS_TEST_POSTGRES="postgres://postgres:$password@127.0.0.1:$port/postgres"
  echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($PG_DIR)"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ] || return 0
  pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
