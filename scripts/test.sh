#!/usr/bin/env bash
# The test command (README): every Rust test in one build, then the Node interop suites.
#
# The store suite runs on redb and, when FUNCTIONS_TEST_POSTGRES names a database, on
# PostgreSQL too; its TLS tests run when FUNCTIONS_TEST_POSTGRES_TLS names a TLS-only server
# (.ci/run starts both with scripts/postgres.sh; locally:
# `source scripts/postgres.sh && pg_start && pg_start --tls && bash scripts/test.sh; pg_stop`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${FUNCTIONS_TEST_POSTGRES:-}" ]; then
  echo "FUNCTIONS_TEST_POSTGRES is not set: the store suite's PostgreSQL half is skipped" >&2
fi
if [ -z "${FUNCTIONS_TEST_POSTGRES_TLS:-}" ]; then
  echo "FUNCTIONS_TEST_POSTGRES_TLS is not set: the store's TLS tests are skipped" \
    "(pg_start --tls in scripts/postgres.sh starts a server for them)" >&2
fi

# The pinned Node packages (package-lock.json) first: the capnweb crate's tests run against
# the JavaScript reference server too, and under CI=true they fail rather than skip without it.
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
# Published wasm-bindgen packages that the isolate's wasm_packages test runs (and fails
# without under CI=true); their answers under Node are tests/wasm-packages/expected.json.
(cd tests/wasm-packages && npm ci --no-audit --no-fund --loglevel=error)
# The npm packages of the TypeScript fixture (a function deployed straight from its directory).
(cd tests/npm-app && npm ci --no-audit --no-fund --loglevel=error)

# One build of every crate's tests and examples (the interop server is an example).
cargo test --workspace
# A panic on a JavaScript thread is contained (needs the test-only native that panics).
# `--workspace` keeps the dependencies' features as above, so only `isolate` is rebuilt.
cargo test --workspace --features isolate/test-panic --test panic
# The libFuzzer target builds and runs its seeds on stable (fuzz/ tests already ran its
# harness over mutations; coverage-guided fuzzing: scripts/fuzz.sh).
cargo build -p capnweb-fuzz --bin decode_message
target/debug/decode_message fuzz/seeds/*.json 2>&1 | grep -c "^Executed"

# The official capnweb 0.12.0 client against our Rust interop server...
(cd tests/interop && INTEROP_SERVER="$PWD/../../target/debug/examples/interop_server" node --test client.test.mjs)
# ...and against the JavaScript reference server, which proves the suite itself.
(cd tests/interop && node --test client.test.mjs)
# End to end: the built `functions` binary serving examples/ (built by `cargo test` above).
(cd tests/interop && node --test server.test.mjs)
# TypeScript and npm packages deployed from a directory, and bad input refused.
(cd tests/interop && node --test npm_app.test.mjs)
# `functions types` output type-checked with tsc (typescript pinned in tests/interop).
(cd tests/interop && node --test types.test.mjs)
# `functions dev`: deploy, redeploy on change, keep the last good version, stop on Ctrl-C.
(cd tests/interop && node --test dev.test.mjs)
# The README's TypeScript and npm commands, as written.
(cd tests/interop && node --test readme.test.mjs)
# The attack suite against a real `functions serve`.
(cd tests/interop && node --test adversarial.test.mjs)
# WebSockets in functions (WebSocketPair bridged to the real connection).
(cd tests/interop && node --test websocket.test.mjs)
# Who is calling /_rpc: authenticate, ctx.request, redaction.
(cd tests/interop && node --test auth.test.mjs)
# capnweb served from a function's own fetch (the built-in capnweb module on the Rust core).
(cd tests/interop && node --test capnweb_fn.test.mjs)
# The interop contract served by a function from its own URL passes the client suite.
(cd tests/interop && node --test fn_interop.test.mjs)
