#!/usr/bin/env bash
# The capnweb session soak (soak.mjs): one million calls over one WebSocket session against a
# function on `functions serve`; server RSS and table sizes every 10 s; fails if RSS at the end
# is above 1.05 x RSS at 10 % of the run or the tables are not back to their size before it.
#
#   bash bench/sessions/run.sh [--calls N] [--in-flight N] [--sample-ms MS]
#
# Builds the release binary unless FUNCTIONS_BIN names one (a debug binary works, slower).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ -z "${FUNCTIONS_BIN:-}" ]]; then
  cargo build --release -p server --bin functions
  export FUNCTIONS_BIN="$ROOT/target/release/functions"
fi
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
node bench/sessions/soak.mjs "$@"
