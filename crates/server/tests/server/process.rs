//! The built `functions` binary: persistence across SIGKILL, graceful SIGTERM, and the CLI.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use capnweb::transport::websocket;
use capnweb::{Limits, Value};
use serde_json::json;

use crate::common::{js_bundle, request, API_JS};
use crate::spawned::{Spawned, BIN};

fn token_file(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin-token"))
        .expect("token file")
        .trim()
        .to_owned()
}

async fn deploy(base: &str, token: &str, id: &str, b: serde_json::Value) -> u16 {
    let auth = format!("Bearer {token}");
    request(
        base,
        "PUT",
        &format!("/_admin/functions/{id}"),
        &[("authorization", &auth)],
        b.to_string().into_bytes(),
    )
    .await
    .status
}

#[tokio::test]
async fn kv_and_blob_data_survive_sigkill_and_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Spawned::start(dir.path(), &[]);
    let token = first
        .printed_token
        .clone()
        .expect("first start prints the token");
    assert_eq!(
        token,
        token_file(dir.path()),
        "the printed token is the saved one"
    );
    let b = js_bundle(
        "v1",
        json!({
            "KV": {"type": "kv", "namespace": "durable"},
            "FILES": {"type": "blob", "bucket": "durable"}
        }),
    );
    assert_eq!(deploy(&first.base, &token, "keeper", b).await, 200);
    let session = websocket::connect(&first.ws("keeper"), None, Limits::default())
        .await
        .expect("connects");
    let api = session.remote_main();
    api.call("binding", vec!["KV".into()])
        .to_stub()
        .call("put", vec!["k".into(), "kept".into()])
        .await
        .expect("kv put");
    api.call("binding", vec!["FILES".into()])
        .to_stub()
        .call("put", vec!["f.bin".into(), "bytes!".into()])
        .await
        .expect("blob put");
    drop(session);
    let mut first = first;
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");
    drop(first);

    let second = Spawned::start(dir.path(), &[]);
    assert!(
        second.printed_token.is_none(),
        "a restart does not print a new token"
    );
    assert_eq!(
        token_file(dir.path()),
        token,
        "the token is kept across restarts"
    );
    let session = websocket::connect(&second.ws("keeper"), None, Limits::default())
        .await
        .expect("the function is still deployed");
    let api = session.remote_main();
    let v = api
        .call("binding", vec!["KV".into()])
        .to_stub()
        .call("get", vec!["k".into()])
        .await
        .expect("kv get");
    assert_eq!(v.as_str(), Some("kept"));
    let body = api
        .call("binding", vec!["FILES".into()])
        .to_stub()
        .call("get", vec!["f.bin".into()])
        .get("body")
        .await
        .expect("blob get");
    let Value::Readable(body) = body else {
        panic!("blob body is a stream")
    };
    assert_eq!(body.read_all().await.expect("body read"), b"bytes!");
    let text = api
        .call("binding", vec!["FILES".into()])
        .to_stub()
        .call("get", vec!["f.bin".into()])
        .get("text")
        .to_stub()
        .call_fn(vec![])
        .await
        .expect("blob text()");
    assert_eq!(text.as_str(), Some("bytes!"));
    // The old token still works on the admin API.
    let auth = format!("Bearer {token}");
    let list = request(
        &second.base,
        "GET",
        "/_admin/functions",
        &[("authorization", &auth)],
        vec![],
    )
    .await;
    assert_eq!(list.status, 200);
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_call_finish_then_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Spawned::start(dir.path(), &[]);
    let token = token_file(dir.path());
    assert_eq!(
        deploy(&server.base, &token, "slowpoke", js_bundle("v1", json!({}))).await,
        200
    );
    let base = server.base.clone();
    let call = tokio::spawn(async move {
        request(
            &base,
            "POST",
            "/slowpoke/",
            &[("x-rpc-method", "slow")],
            b"[700]".to_vec(),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signal("-TERM");
    let r = call.await.expect("task");
    assert_eq!(r.status, 200, "the in-flight call finished");
    assert_eq!(r.json()["result"]["before"], "v1");
    let status = tokio::task::spawn_blocking(move || server.wait(Duration::from_secs(10)))
        .await
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
}

fn cli(args: &[&str], server: &str, data: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("FUNCTIONS_URL", server)
        .env_remove("FUNCTIONS_ADMIN_TOKEN")
        .arg("--data")
        .arg(data)
        .output()
        .expect("run cli")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn cli_serve_deploy_dir_then_list_deploy_call_rollback_delete() {
    let data = tempfile::tempdir().expect("tempdir");
    let fns = tempfile::tempdir().expect("tempdir");
    std::fs::write(fns.path().join("hello.js"), API_JS).expect("write");
    let dir_fn = fns.path().join("dir-fn");
    std::fs::create_dir_all(&dir_fn).expect("mkdir");
    std::fs::write(dir_fn.join("index.js"), API_JS).expect("write");
    std::fs::write(
        dir_fn.join("function.json"),
        r#"{"bindings": {"VERSION": "from-dir"}}"#,
    )
    .expect("write");
    let server = Spawned::start(
        data.path(),
        &["--deploy", fns.path().to_str().expect("utf8")],
    );
    let deployed: Vec<_> = server
        .lines
        .iter()
        .filter(|l| l.starts_with("deployed "))
        .collect();
    assert_eq!(deployed.len(), 2, "{:?}", server.lines);
    let (base, d) = (server.base.as_str(), data.path());

    let list = cli(&["list"], base, d);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(
        stdout(&list).contains("dir-fn\tversion 1"),
        "{}",
        stdout(&list)
    );
    assert!(
        stdout(&list).contains("hello\tversion 1"),
        "{}",
        stdout(&list)
    );

    let redeploy = cli(
        &["deploy", dir_fn.to_str().expect("utf8"), "--id", "hello"],
        base,
        d,
    );
    assert!(redeploy.status.success(), "{}", stderr(&redeploy));
    assert!(
        stdout(&redeploy).contains("deployed hello version 2"),
        "{}",
        stdout(&redeploy)
    );

    let call = cli(&["call", "hello", "add", "2", "3"], base, d);
    assert!(call.status.success(), "{}", stderr(&call));
    assert_eq!(stdout(&call).trim(), "5");
    let call = cli(&["call", "hello", "version", "--ws"], base, d);
    assert!(call.status.success(), "{}", stderr(&call));
    let v: serde_json::Value = serde_json::from_str(&stdout(&call)).expect("json");
    assert_eq!(v["label"], "from-dir");

    let thrown = cli(&["call", "hello", "fail", "\"no\""], base, d);
    assert_eq!(thrown.status.code(), Some(1));
    assert!(
        stderr(&thrown).starts_with("error: "),
        "{}",
        stderr(&thrown)
    );
    assert!(
        stderr(&thrown).contains("RangeError: no"),
        "{}",
        stderr(&thrown)
    );
    let bad_arg = cli(&["call", "hello", "add", "not-json"], base, d);
    assert_eq!(bad_arg.status.code(), Some(1));
    assert!(
        stderr(&bad_arg).contains("quote strings"),
        "{}",
        stderr(&bad_arg)
    );

    let rollback = cli(&["rollback", "hello"], base, d);
    assert!(rollback.status.success(), "{}", stderr(&rollback));
    assert!(
        stdout(&rollback).contains("version 1"),
        "{}",
        stdout(&rollback)
    );

    let delete = cli(&["delete", "dir-fn"], base, d);
    assert!(delete.status.success(), "{}", stderr(&delete));
    let again = cli(&["delete", "dir-fn"], base, d);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("HTTP 404"), "{}", stderr(&again));

    let wrong = Command::new(BIN)
        .args(["list", "--server", base, "--token", "wrong"])
        .output()
        .expect("run");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("admin token"), "{}", stderr(&wrong));

    let unreachable = Command::new(BIN)
        .args(["list", "--server", "http://127.0.0.1:9", "--token", "x"])
        .output()
        .expect("run");
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        stderr(&unreachable).contains("cannot reach the server"),
        "{}",
        stderr(&unreachable)
    );
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["deploy", "--help"],
        vec!["list", "--help"],
        vec!["get", "--help"],
        vec!["delete", "--help"],
        vec!["rollback", "--help"],
        vec!["call", "--help"],
        vec!["logs", "--help"],
        vec!["nodes", "--help"],
    ] {
        let out = Command::new(BIN).args(&cmd).output().expect("run");
        assert!(out.status.success(), "{cmd:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd:?}"
        );
    }
}

/// A `functions logs` child whose stdout lines arrive on a channel; killed on drop.
struct Follower {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Follower {
    /// Starts `functions logs ARGS…` and waits until it is following (its stderr says so).
    fn start(args: &[&str], base: &str, data: &Path) -> Follower {
        let mut child = Command::new(BIN)
            .arg("logs")
            .args(args)
            .args(["--server", base, "--data"])
            .arg(data)
            .env_remove("FUNCTIONS_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn functions logs");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // From here on, Drop kills and reaps the child whatever happens.
        let follower = Follower { child, lines };
        let mut first = String::new();
        let mut stderr = BufReader::new(stderr);
        stderr.read_line(&mut first).expect("read stderr");
        assert!(
            first.starts_with("following"),
            "functions logs said {first:?}"
        );
        std::thread::spawn(move || for _ in stderr.lines() {});
        follower
    }

    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a log line within 10 s")
    }

    fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "functions logs did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn cli_logs_prints_console_output_live_and_fails_clearly() {
    let data = tempfile::tempdir().expect("tempdir");
    let fns = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        fns.path().join("talk.js"),
        "export default { fetch(request) { console.log('hello from', request.url); \
         return new Response('ok') } }",
    )
    .expect("write");
    std::fs::write(
        fns.path().join("quiet.js"),
        "export default { fetch() { console.log('not me'); return new Response('ok') } }",
    )
    .expect("write");
    let server = Spawned::start(
        data.path(),
        &["--deploy", fns.path().to_str().expect("utf8")],
    );
    let (base, d) = (server.base.as_str(), data.path());

    let mut text = Follower::start(&["talk"], base, d);
    let json = Follower::start(&["talk", "--json"], base, d);
    assert_eq!(
        request(base, "GET", "/quiet/", &[], Vec::new())
            .await
            .status,
        200
    );
    assert_eq!(
        request(base, "GET", "/talk/a?b=1", &[], Vec::new())
            .await
            .status,
        200
    );

    let line = text.next();
    let (stamp, rest) = line.split_once(' ').expect("TIMESTAMP LEVEL message");
    assert!(stamp.ends_with('Z') && stamp.contains('T'), "{line}");
    let rest = rest.trim_start();
    assert!(rest.starts_with("INFO"), "{line}");
    assert!(rest.contains("hello from http://"), "{line}");
    assert!(rest.ends_with("/a?b=1"), "{line}");
    let raw: serde_json::Value = serde_json::from_str(&json.next()).expect("--json prints JSON");
    assert_eq!(raw["function"], "talk");
    assert_eq!(raw["level"], "info");

    let unknown = cli(&["logs", "nosuchfn"], base, d);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("HTTP 404"),
        "{}",
        stderr(&unknown)
    );
    let wrong = Command::new(BIN)
        .args(["logs", "talk", "--server", base, "--token", "wrong"])
        .output()
        .expect("run");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("HTTP 401"), "{}", stderr(&wrong));

    // The server shutting down ends the stream: `functions logs` exits 0.
    server.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || text.wait(Duration::from_secs(10)))
        .await
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
}
