#!/usr/bin/env bash
# A throwaway PostgreSQL for tests and local clusters: Debian's `postgresql` binaries run as
# the `postgres` user (runuser) in a temporary data directory, on a free loopback port, with a
# random password. No system service, no container.
#
#   source scripts/postgres.sh && pg_start     # exports FUNCTIONS_TEST_POSTGRES (a URL) and PG_DIR
#   pg_start --tls                             # a second one that accepts TLS only (below)
#   pg_stop                                    # stops them and removes their data directories
#
# `pg_start --tls` makes a throwaway CA and a certificate for localhost/127.0.0.1 with the
# openssl CLI, turns `ssl` on and allows TCP clients through `hostssl` rules only, so a
# clear-text connection is refused. It exports FUNCTIONS_TEST_POSTGRES_TLS (a URL for
# localhost, without TLS parameters), FUNCTIONS_TEST_POSTGRES_TLS_CERTS (a directory: `ca.crt`,
# `other-ca.crt` (a CA that signed nothing), `client.crt`/`client.key` (for the role
# `certuser`, which may log in with that certificate only)) and PG_TLS_DIR.
#
# Run as root (CI, this machine) or as any user who can run initdb (then without runuser).
# `pg_start` installs the `postgresql` package (and `openssl` for --tls) with apt-get when
# their binaries are missing.

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

# A CA, a second CA, a server certificate for localhost and 127.0.0.1 and a client
# certificate for `certuser`, in directory $1 (P-256 keys, valid for two days).
pg_make_certs() {
  local dir=$1 name
  (
    set -e
    cd "$dir"
    for name in ca other-ca; do
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=functions test $name" -keyout "$name.key" -out "$name.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        2>/dev/null
    done
    pg_sign_cert server "/CN=localhost" \
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth
    pg_sign_cert client "/CN=certuser" "subjectAltName=DNS:certuser" clientAuth
    rm -f ./*.csr ./*.ext ca.key other-ca.key
    chmod 600 ./*.key
  )
}

# Signs a new key's certificate with ca.key: $1 file name, $2 subject, $3 SAN line, $4 usage.
pg_sign_cert() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' \
    "$3" "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
    -days 2 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}

pg_start() {
  local bindir port password tls="" dir
  [ "${1:-}" = --tls ] && tls=1
  bindir=$(pg_bindir) || true
  if [ -z "$bindir" ]; then
    apt_install_without_services postgresql
    bindir=$(pg_bindir)
  fi
  if [ -n "$tls" ] && ! command -v openssl >/dev/null; then
    apt_install_without_services openssl
  fi
  dir=$(mktemp -d /tmp/functions-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  printf '%s\n' "$password" >"$dir/pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir/pwfile"
  pg_as "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
    --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  rm -f "$dir/pwfile"
  local ssl_options=""
  if [ -n "$tls" ]; then
    mkdir "$dir/tls"
    pg_make_certs "$dir/tls" || { echo "making the test certificates failed" >&2; return 1; }
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir/tls"
    ssl_options="-c ssl=on -c ssl_cert_file=$dir/tls/server.crt \
      -c ssl_key_file=$dir/tls/server.key -c ssl_ca_file=$dir/tls/ca.crt"
    # TCP clients over TLS only: `certuser` with its client certificate, everyone else with
    # a password. No `host` rule, so a clear-text connection is refused.
    cat >"$dir/data/pg_hba.conf" <<'HBA'
local   all  all                   scram-sha-256
hostssl all  certuser  127.0.0.1/32  cert
hostssl all  certuser  ::1/128       cert
hostssl all  all       127.0.0.1/32  scram-sha-256
hostssl all  all       ::1/128       scram-sha-256
HBA
  fi
  # A free port can be taken between the check and the bind (other tests start servers
  # too): try a few.
  local tries=0
  while :; do
    port=$(pg_free_port)
    # fsync stays on: the tests prove that acknowledged writes survive.
    # shellcheck disable=SC2086 # ssl_options is a list of options
    if pg_as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 $ssl_options" \
      >/dev/null; then
      break
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 5 ]; then
      cat "$dir/postgres.log" >&2
      return 1
    fi
  done
  PG_BINDIR=$bindir
  export PG_BINDIR
  if [ -n "$tls" ]; then
    PGPASSWORD=$password "$bindir/psql" -q -h "$dir" -p "$port" -U postgres -d postgres \
      -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE certuser LOGIN" -c "GRANT CREATE ON DATABASE postgres TO certuser" ||
      return 1
    PG_TLS_DIR=$dir
    export PG_TLS_DIR
    export FUNCTIONS_TEST_POSTGRES_TLS="postgres://postgres:$password@localhost:$port/postgres"
    export FUNCTIONS_TEST_POSTGRES_TLS_CERTS="$dir/tls"
  else
    PG_DIR=$dir
    export PG_DIR
    export FUNCTIONS_TEST_POSTGRES="postgres://postgres:$password@127.0.0.1:$port/postgres"
  fi
  echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port${tls:+ (TLS only)} ($dir)"
}

pg_stop() {
  local dir
  for dir in "${PG_DIR:-}" "${PG_TLS_DIR:-}"; do
    [ -n "$dir" ] && [ -d "$dir/data" ] || continue
    pg_as "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
  done
}
