// A real `functions serve` for a test file: started on a free port with a temporary data
// directory, stopped (and its directory removed) when the file's tests end.
//
// FUNCTIONS_BIN overrides the binary (default ../../../target/debug/functions).

globalThis.WebSocket ??= (await import("ws")).default;

import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { newWebSocketRpcSession } from "capnweb";

const HERE = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.FUNCTIONS_BIN ?? resolve(HERE, "../../../target/debug/functions");
export const EXAMPLES = resolve(HERE, "../../../examples");

/** Starts `functions serve` with extra `args`; resolves once it prints its address. */
export async function startServer({ args = [], token = "adversarial-test-token", env = {}, captureLogs = false } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "functions-test-"));
  const child = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--data", dataDir, ...args], {
    detached: true,
    env: { ...process.env, FUNCTIONS_ADMIN_TOKEN: token, RUST_LOG: process.env.RUST_LOG ?? "warn", ...env },
    stdio: ["ignore", "pipe", captureLogs ? "pipe" : "inherit"],
  });
  // With `captureLogs`, the server's log lines (stderr) are kept for `server.logs()`.
  let logs = "";
  if (captureLogs) {
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => { logs += chunk; });
  }
  const kill = (signal) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      try {
        child.kill(signal);
      } catch {}
    }
  };
  process.on("exit", () => kill("SIGKILL"));
  const addr = await new Promise((ok, fail) => {
    let buf = "";
    const timer = setTimeout(() => fail(new Error(`no 'listening on' line from ${BIN}:\n${buf}`)), 60_000);
    child.on("exit", (code, sig) => fail(new Error(`${BIN} exited (${code ?? sig}):\n${buf}`)));
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      buf += chunk;
      const m = /listening on http:\/\/(\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
  });
  child.stdout.resume();
  const base = `http://${addr}`;
  const server = {
    child,
    pid: child.pid,
    base,
    wsBase: `ws://${addr}`,
    token,
    /** What the server logged so far (only with `captureLogs`). */
    logs: () => logs,
    /** PUTs a bundle as function `id`; resolves to the response (status and JSON body). */
    async deploy(id, bundle) {
      const res = await fetch(`${base}/_admin/functions/${id}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(bundle),
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) throw new Error(`deploy ${id}: ${res.status} ${JSON.stringify(body)}`);
      return body;
    },
    admin(method, path, body) {
      return fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
    /** A WebSocket capnweb session on /_rpc/<id>, disposed when test `t` ends. */
    async openRpc(t, id) {
      const ws = new WebSocket(`${server.wsBase}/_rpc/${id}`);
      return { api: await rpcOn(t, ws), ws };
    },
    /** The server's CPU time so far (user + system), in ms, from /proc. */
    cpuMs() {
      const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
      return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
    },
    /** Stops the server and removes its data directory. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, "exit");
        kill("SIGTERM");
        const timer = setTimeout(() => kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

/** A capnweb WebSocket session on `url` with extra request `headers`, disposed when test `t` ends. */
export async function openWs(t, url, headers = {}) {
  return rpcOn(t, new WebSocket(url, { headers }));
}

/** A capnweb session over `ws` once it opens; the session is disposed and the socket
 * terminated when test `t` ends (the socket even if it never opened). */
export async function rpcOn(t, ws) {
  let api;
  t.after(() => {
    try {
      api?.[Symbol.dispose]();
    } catch {}
    ws.terminate();
  });
  await once(ws, "open");
  api = newWebSocketRpcSession(ws);
  return api;
}

/** Runs the `functions` CLI against `server`; resolves to { code, stdout, stderr }. */
export function cli(server, args, { env = {} } = {}) {
  return new Promise((ok) => {
    execFile(
      BIN,
      args,
      { env: { ...process.env, FUNCTIONS_URL: server.base, FUNCTIONS_ADMIN_TOKEN: server.token, ...env } },
      (err, stdout, stderr) => ok({ code: err ? (err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A bundle of one ES module `index.js`. */
export function bundle(src, extra = {}) {
  return { mainModule: "index.js", modules: { "index.js": src }, ...extra };
}
