//! The built `functions` binary on a shared PostgreSQL store: the admin token it requires,
//! a clear failure when the database is unreachable, and two nodes serving the same
//! functions and data, each following the other's deploys, rollbacks and deletes.
//!
//! The two-node test uses the database named by `FUNCTIONS_TEST_POSTGRES` (a schema of its
//! own); without it the test passes vacuously with a note, except under `CI=true`, where it
//! fails.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capnweb::transport::websocket;
use capnweb::{Limits, Value};
use serde_json::json;

use crate::common::{js_bundle, request};
use crate::spawned::{Spawned, BIN};

const TOKEN: &str = "shared-store-test-token";

/// A `functions serve --store …` child (killed on drop), with its own data directory; it
/// answers as a [`Remote`] at its URL.
struct Node {
    _served: Spawned,
    remote: Remote,
    _data: tempfile::TempDir,
}

impl std::ops::Deref for Node {
    type Target = Remote;

    fn deref(&self) -> &Remote {
        &self.remote
    }
}

impl Node {
    fn start(store_url: &str) -> Node {
        let data = tempfile::tempdir().expect("tempdir");
        let served = Spawned::start_with(
            data.path(),
            &["--store", store_url],
            &[("FUNCTIONS_ADMIN_TOKEN", TOKEN)],
        );
        Node {
            remote: Remote {
                base: served.base.clone(),
            },
            _served: served,
            _data: data,
        }
    }

    async fn admin(&self, method: &str, path: &str, body: Vec<u8>) -> u16 {
        let auth = format!("Bearer {TOKEN}");
        request(&self.base, method, path, &[("authorization", &auth)], body)
            .await
            .status
    }
}

fn run_serve(store_url: &str, token: Option<&str>) -> std::process::Output {
    let data = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--store", store_url])
        .env_remove("FUNCTIONS_ADMIN_TOKEN")
        .env("RUST_LOG", "warn");
    if let Some(t) = token {
        cmd.env("FUNCTIONS_ADMIN_TOKEN", t);
    }
    cmd.output().expect("run functions serve")
}

#[test]
fn a_shared_store_requires_the_admin_token_from_the_environment() {
    let out = run_serve("postgres://nobody@127.0.0.1:1/none", None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FUNCTIONS_ADMIN_TOKEN"), "{err}");
    assert!(
        !out.stdout.windows(11).any(|w| w == b"listening o"),
        "never listened"
    );
}

#[test]
fn an_unreachable_shared_store_is_a_clear_error_and_a_nonzero_exit() {
    let out = run_serve("postgres://nobody:secret-pw@127.0.0.1:1/none", Some(TOKEN));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the store"), "{err}");
    assert!(err.contains("unavailable"), "{err}");
    assert!(
        !err.contains("secret-pw"),
        "the password is not printed: {err}"
    );
}

/// The test database's URL with a fresh schema of its own as the search path, or `None`
/// (skip) when no database is configured outside CI.
async fn shared_store_url() -> Option<(String, String, String)> {
    let url = match std::env::var("FUNCTIONS_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "FUNCTIONS_TEST_POSTGRES is not set: under CI=true the shared-store tests must run"
            )
        }
        _ => {
            eprintln!("skipped: FUNCTIONS_TEST_POSTGRES is not set");
            return None;
        }
    };
    let schema = format!("server_test_{}", server::token::random_hex(8));
    // Connecting once with the schema creates it and applies the migrations.
    let options = store::postgres::PgOptions {
        schema: Some(schema.clone()),
        ..store::postgres::PgOptions::default()
    };
    drop(
        store::Store::connect_postgres_with(&url, options, std::sync::Arc::new(store::SystemClock))
            .await
            .expect("the test database is usable"),
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    let node_url = format!("{url}{sep}options=-csearch_path%3D{schema}");
    Some((url, node_url, schema))
}

/// A function that prints its query string.
const TALKER_JS: &str = r#"
export default {
  fetch(request) {
    console.log("said " + new URL(request.url).searchParams.get("m"));
    return new Response("ok");
  },
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_asked_of_one_node_merge_the_lines_of_every_live_node() {
    let Some((_, node_url, _)) = shared_store_url().await else {
        return;
    };
    let nodes = [
        Node::start(&node_url),
        Node::start(&node_url),
        Node::start(&node_url),
    ];
    let auth = format!("Bearer {TOKEN}");
    let body = crate::common::code(TALKER_JS, json!({}))
        .to_string()
        .into_bytes();
    assert_eq!(
        nodes[0]
            .admin("PUT", "/_admin/functions/talker", body)
            .await,
        200
    );
    // Every node is in the registry before the stream opens (it reads the list as it opens).
    let start = Instant::now();
    let ids = loop {
        let r = request(
            &nodes[0].base,
            "GET",
            "/_admin/nodes",
            &[("authorization", &auth)],
            vec![],
        )
        .await;
        let listed: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        let ids: Vec<(String, String)> = listed["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                (
                    n["address"].as_str().unwrap_or_default().to_owned(),
                    n["id"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if nodes.iter().all(|n| ids.iter().any(|(a, _)| *a == n.base)) {
            break ids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "all three listed: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id_of = |n: &Node| {
        ids.iter()
            .find(|(a, _)| *a == n.base)
            .map(|(_, id)| id.clone())
            .expect("listed")
    };

    let mut stream = crate::common::LineStream::open(
        &nodes[0].base,
        "/_admin/functions/talker/logs",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(stream.status, 200);
    // Each node prints a line of its own (again until it arrives: the peer streams open
    // as the fan-out starts); the stream on the first node carries all three, each naming
    // the node that printed it.
    for (i, node) in nodes.iter().enumerate() {
        let want = id_of(node);
        let start = Instant::now();
        'seen: loop {
            let r = request(&node.base, "GET", &format!("/talker/?m=n{i}"), &[], vec![]).await;
            assert_eq!(r.status, 200);
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                let Ok(Some(line)) = tokio::time::timeout(
                    Duration::from_millis(500),
                    stream.next_line(Duration::from_secs(10)),
                )
                .await
                else {
                    break;
                };
                let line: serde_json::Value = serde_json::from_str(&line).expect("json line");
                if line["message"] == format!("said n{i}").as_str() {
                    assert_eq!(line["node"], want.as_str(), "{line}");
                    assert_eq!(line["function"], "talker");
                    break 'seen;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the line printed on node {i} reaches the stream on node 0"
            );
        }
    }
    // `?local=1`: this node's lines only.
    let mut local = crate::common::LineStream::open(
        &nodes[0].base,
        "/_admin/functions/talker/logs?local=1",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(local.status, 200);
    let r = request(&nodes[1].base, "GET", "/talker/?m=elsewhere", &[], vec![]).await;
    assert_eq!(r.status, 200);
    let r = request(&nodes[0].base, "GET", "/talker/?m=here", &[], vec![]).await;
    assert_eq!(r.status, 200);
    let line = local.next_json().await;
    assert_eq!(line["message"], "said here", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_code_kv_and_blobs_and_follow_each_others_changes() {
    let Some((url, node_url, schema)) = shared_store_url().await else {
        return;
    };
    let a = Node::start(&node_url);
    let b = Node::start(&node_url);
    let bindings = json!({
        "KV": {"type": "kv", "namespace": "shared"},
        "FILES": {"type": "blob", "bucket": "shared"}
    });
    let deploy = |label: &str| js_bundle(label, bindings.clone()).to_string().into_bytes();

    // Both nodes are in the registry, and `functions nodes` on either lists both.
    let start = Instant::now();
    loop {
        let auth = format!("Bearer {TOKEN}");
        let r = request(
            &a.base,
            "GET",
            "/_admin/nodes",
            &[("authorization", &auth)],
            vec![],
        )
        .await;
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
        if nodes.len() == 2 {
            let addresses: Vec<&str> = nodes.iter().filter_map(|n| n["address"].as_str()).collect();
            assert!(
                addresses.contains(&a.base.as_str()) && addresses.contains(&b.base.as_str()),
                "{v}"
            );
            assert_eq!(
                nodes.iter().filter(|n| n["self"] == json!(true)).count(),
                1,
                "{v}"
            );
            assert!(
                nodes
                    .iter()
                    .all(|n| n["version"].is_string() && n["in_flight"].is_u64()),
                "{v}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "both nodes register: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = Command::new(BIN)
        .args(["nodes", "--server", &b.base, "--token", TOKEN])
        .output()
        .expect("functions nodes");
    assert!(listed.status.success());
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains(&a.base) && text.contains(&b.base), "{text}");

    // Deployed through A, served by B.
    assert_eq!(
        a.admin("PUT", "/_admin/functions/app", deploy("v1")).await,
        200
    );
    assert_eq!(b.version("app").await.as_deref(), Some("v1"));

    // KV written through A, read through B; a blob streamed in through B, out through A.
    let on_a = websocket::connect(&a.ws("app"), None, Limits::default())
        .await
        .expect("connects to A");
    let on_b = websocket::connect(&b.ws("app"), None, Limits::default())
        .await
        .expect("connects to B");
    on_a.remote_main()
        .call("binding", vec!["KV".into()])
        .to_stub()
        .call("put", vec!["k".into(), "written on A".into()])
        .await
        .expect("kv put on A");
    let read = on_b
        .remote_main()
        .call("binding", vec!["KV".into()])
        .to_stub()
        .call("get", vec!["k".into()])
        .await
        .expect("kv get on B");
    assert_eq!(read.as_str(), Some("written on A"));
    let big: Vec<u8> = (0..(2 * store::BLOB_CHUNK_BYTES + 100))
        .map(|i| (i % 253) as u8)
        .collect();
    on_b.remote_main()
        .call("binding", vec!["FILES".into()])
        .to_stub()
        .call(
            "put",
            vec![
                "big.bin".into(),
                Value::Bytes(capnweb::Bytes::new(big.clone())),
            ],
        )
        .await
        .expect("blob put on B");
    // Read back on A through `arrayBuffer()`: the body is read from the store on A, chunk by
    // chunk, and arrives in one value. (The `body` stream is not compared byte for byte over
    // the wire here: capnweb can reorder a pipe's writes when its reader is slow; see the
    // store and binding tests for the stream's order.)
    let read = on_a
        .remote_main()
        .call("binding", vec!["FILES".into()])
        .to_stub()
        .call("get", vec!["big.bin".into()])
        .get("arrayBuffer")
        .to_stub()
        .call_fn(vec![])
        .await
        .expect("blob get on A");
    let Value::Bytes(read) = read else {
        panic!("arrayBuffer() gives bytes")
    };
    assert!(
        read.data == big,
        "read {} bytes back, wrote {}",
        read.data.len(),
        big.len()
    );
    drop((on_a, on_b));

    // B caches v1; a deploy through A reaches B by notification, long before a reconcile.
    assert_eq!(
        a.admin("PUT", "/_admin/functions/app", deploy("v2")).await,
        200
    );
    let took = b.wait_for_version("app", Some("v2")).await;
    eprintln!("deploy on A served by B after {took:?}");
    // A rollback through B reaches A.
    assert_eq!(
        b.admin("POST", "/_admin/functions/app/rollback", vec![])
            .await,
        200
    );
    let took = a.wait_for_version("app", Some("v1")).await;
    eprintln!("rollback on B served by A after {took:?}");
    // A delete through A reaches B.
    assert_eq!(
        a.admin("DELETE", "/_admin/functions/app", vec![]).await,
        200
    );
    let took = b.wait_for_version("app", None).await;
    eprintln!("delete on A seen by B after {took:?}");

    drop((a, b));
    store::postgres::drop_schema(&url, &schema)
        .await
        .expect("drop the test schema");
}

#[tokio::test]
async fn on_the_embedded_store_the_node_list_is_this_node_alone() {
    let server = crate::common::TestServer::start().await;
    let r = server.admin("GET", "/_admin/nodes", None).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let nodes = v["nodes"].as_array().expect("a list of nodes");
    assert_eq!(nodes.len(), 1, "{v}");
    assert_eq!(nodes[0]["self"], json!(true));
    // The request asking is in flight.
    assert!(nodes[0]["in_flight"].as_u64() >= Some(1), "{v}");
    let unauthorized = request(&server.base, "GET", "/_admin/nodes", &[], vec![]).await;
    assert_eq!(unauthorized.status, 401);
}

/// `scripts/cluster.sh` started in a directory of its own; stopped on drop.
struct Cluster {
    state: std::path::PathBuf,
    _dir: tempfile::TempDir,
    front: Remote,
    nodes: Vec<Remote>,
}

impl Cluster {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster.sh")
    }

    /// `None` (skip) without nginx outside CI.
    fn start(n: usize) -> Option<Cluster> {
        let have_nginx = Command::new("sh")
            .args(["-c", "command -v nginx"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !have_nginx && !std::env::var("CI").is_ok_and(|v| v == "true") {
            eprintln!("skipped: nginx is not installed (.ci/run installs it)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("cluster");
        let out = Command::new("bash")
            .arg(Self::script())
            .args(["start", &n.to_string()])
            .env("CLUSTER_DIR", &state)
            .env("FUNCTIONS_BIN", BIN)
            .env("FUNCTIONS_ADMIN_TOKEN", TOKEN)
            .output()
            .expect("run scripts/cluster.sh");
        assert!(
            out.status.success(),
            "cluster.sh start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(state.join("env")).expect("cluster env");
        let value = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .map(|v| v.trim_matches('\'').to_owned())
                .unwrap_or_else(|| panic!("{name} in {env}"))
        };
        Some(Cluster {
            front: Remote {
                base: value("FUNCTIONS_URL"),
            },
            nodes: value("NODE_URLS")
                .split(' ')
                .map(|base| Remote {
                    base: base.to_owned(),
                })
                .collect(),
            state,
            _dir: dir,
        })
    }
}

impl Cluster {
    /// `kill -9` of node `i` (1-based, as cluster.sh numbers them).
    fn kill(&self, i: usize) {
        let pid =
            std::fs::read_to_string(self.state.join(format!("node{i}.pid"))).expect("pid file");
        let killed = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill");
        assert!(killed.success(), "kill -9 node {i}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .env("CLUSTER_DIR", &self.state)
            .output();
    }
}

/// A node or the proxy, by URL.
struct Remote {
    base: String,
}

impl Remote {
    /// The label of the version this node serves for `id` (`None`: 404).
    async fn version(&self, id: &str) -> Option<String> {
        let r = request(
            &self.base,
            "POST",
            &format!("/{id}"),
            &[("x-rpc-method", "version")],
            b"[]".to_vec(),
        )
        .await;
        if r.status == 404 {
            return None;
        }
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        v["result"]["label"].as_str().map(str::to_owned)
    }

    /// Polls until this node serves `want` for `id`; returns how long that took.
    async fn wait_for_version(&self, id: &str, want: Option<&str>) -> Duration {
        let start = Instant::now();
        while self.version(id).await.as_deref() != want {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} does not serve {want:?} of {id}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        start.elapsed()
    }

    fn ws(&self, id: &str) -> String {
        format!("{}/_rpc/{id}", self.base.replacen("http://", "ws://", 1))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_nginx_share_deploys_kv_and_sessions() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let [a, b, c] = &cluster.nodes[..] else {
        panic!("three nodes")
    };
    let bindings = json!({ "KV": {"type": "kv", "namespace": "shared"} });
    let auth = format!("Bearer {TOKEN}");
    let deploy = |to: &Remote, label: &str| {
        let body = js_bundle(label, bindings.clone()).to_string().into_bytes();
        let base = to.base.clone();
        let auth = auth.clone();
        async move {
            request(
                &base,
                "PUT",
                "/_admin/functions/app",
                &[("authorization", &auth)],
                body,
            )
            .await
            .status
        }
    };
    // Deploy through A: B, C and the proxy serve it.
    assert_eq!(deploy(a, "v1").await, 200);
    for remote in [b, c, &cluster.front] {
        remote.wait_for_version("app", Some("v1")).await;
    }
    // A redeploy through the proxy reaches every node (each had v1 cached).
    assert_eq!(deploy(&cluster.front, "v2").await, 200);
    for remote in [a, b, c] {
        let took = remote.wait_for_version("app", Some("v2")).await;
        eprintln!("{} serves v2 after {took:?}", remote.base);
    }
    // KV written through A, read through C; a capnweb WebSocket session through nginx.
    let on_a = websocket::connect(&a.ws("app"), None, Limits::default())
        .await
        .expect("connects to A");
    on_a.remote_main()
        .call("binding", vec!["KV".into()])
        .to_stub()
        .call("put", vec!["k".into(), "via A".into()])
        .await
        .expect("kv put on A");
    let through = websocket::connect(&cluster.front.ws("app"), None, Limits::default())
        .await
        .expect("a WebSocket session through nginx");
    let read = through
        .remote_main()
        .call("binding", vec!["KV".into()])
        .to_stub()
        .call("get", vec!["k".into()])
        .await
        .expect("kv get through nginx");
    assert_eq!(read.as_str(), Some("via A"));
    let on_c = websocket::connect(&c.ws("app"), None, Limits::default())
        .await
        .expect("connects to C");
    let read = on_c
        .remote_main()
        .call("binding", vec!["KV".into()])
        .to_stub()
        .call("get", vec!["k".into()])
        .await
        .expect("kv get on C");
    assert_eq!(read.as_str(), Some("via A"));
    drop((on_a, through, on_c));
    // Rollback and delete through the proxy reach every node.
    let r = request(
        &cluster.front.base,
        "POST",
        "/_admin/functions/app/rollback",
        &[("authorization", &auth)],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    for remote in [a, b, c] {
        remote.wait_for_version("app", Some("v1")).await;
    }
    let r = request(
        &cluster.front.base,
        "DELETE",
        "/_admin/functions/app",
        &[("authorization", &auth)],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    for remote in [a, b, c] {
        remote.wait_for_version("app", None).await;
    }

    // A function's own 503 (or a tenant's limit) is its answer, not a sick node: nginx
    // passes it on and does not run the request again on another node.
    let body = crate::common::code(ANSWERS_503_JS, bindings.clone());
    let r = request(
        &a.base,
        "PUT",
        "/_admin/functions/unwell",
        &[("authorization", &auth)],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    for _ in 0..3 {
        let r = request(&cluster.front.base, "PUT", "/unwell/", &[], vec![]).await;
        assert_eq!(r.status, 503, "the function's own answer");
    }
    let r = request(&cluster.front.base, "GET", "/unwell/", &[], vec![]).await;
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "3",
        "each PUT ran the function once, on one node"
    );

    // With two of three nodes dead, every function still reaches the third: a request that
    // hashes to one dead node and falls over to the other is tried on the survivor too.
    cluster.kill(2);
    cluster.kill(3);
    let mut answers = Vec::new();
    for n in 0..30 {
        let r = request(
            &cluster.front.base,
            "GET",
            &format!("/nothing-{n}/"),
            &[],
            vec![],
        )
        .await;
        answers.push(r.status);
    }
    assert!(
        answers.iter().all(|s| *s == 404),
        "the surviving node answers every id (404: no such function): {answers:?}"
    );
}

/// Counts its PUTs in KV and answers each one 503; GET reads the count.
const ANSWERS_503_JS: &str = r#"
export default {
  async fetch(request, env) {
    if (request.method === "PUT") {
      const n = Number((await env.KV.get("puts")) ?? "0") + 1;
      await env.KV.put("puts", String(n));
      return new Response("unwell", { status: 503 });
    }
    return new Response((await env.KV.get("puts")) ?? "0");
  },
};
"#;

/// A function whose fetch handler writes (`PUT /?k=KEY`) and reads (`GET /?k=KEY`) its KV.
const KV_WRITER_JS: &str = r#"
export default {
  async fetch(request, env) {
    const key = new URL(request.url).searchParams.get("k");
    if (request.method === "PUT") {
      await env.KV.put(key, "acknowledged");
      return new Response("ok");
    }
    const value = await env.KV.get(key);
    return new Response(value ?? "missing", { status: value === null ? 404 : 200 });
  },
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_node_kill_and_a_database_restart() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let auth = format!("Bearer {TOKEN}");
    let bundle = crate::common::code(
        KV_WRITER_JS,
        json!({ "KV": {"type": "kv", "namespace": "durable"} }),
    );
    let r = request(
        &cluster.nodes[0].base,
        "PUT",
        "/_admin/functions/writer",
        &[("authorization", &auth)],
        bundle.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let front = cluster.front.base.clone();
    let put = |i: usize| {
        let front = front.clone();
        async move {
            let r = request(&front, "PUT", &format!("/writer/?k=k{i}"), &[], vec![]).await;
            // The function does not catch the binding's StorageUnavailableError: its fetch
            // answers 503 with Retry-After; any 500 is unexpected and reported as 0.
            if r.status == 503 {
                assert_eq!(
                    r.header("retry-after"),
                    Some("1"),
                    "a 503 says when to retry"
                );
            }
            match r.status {
                500 => 0,
                s => s,
            }
        }
    };
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut i = 0;
    let mut write = |n: usize| {
        let range = i..i + n;
        i += n;
        range
    };
    for k in write(50) {
        match put(k).await {
            200 => acknowledged.push(k),
            _ => refused += 1,
        }
    }
    assert_eq!(refused, 0, "no failures before anything broke");

    // kill -9 every node but the last, one after the other, under the stream of writes:
    // nginx moves the function to a node that is alive, and no write is lost or refused.
    for i in [1, 2] {
        cluster.kill(i);
        for k in write(50) {
            match put(k).await {
                200 => acknowledged.push(k),
                _ => refused += 1,
            }
        }
    }
    assert_eq!(
        refused, 0,
        "every PUT (idempotent) that met a killed node was moved to a live one"
    );
    let survivor = &cluster.nodes[2];

    // Restart PostgreSQL under the stream: writes fail (503) while it is down, then succeed
    // again on the same node processes.
    let env = std::fs::read_to_string(cluster.state.join("env")).expect("env");
    let var = |name: &str| {
        env.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .expect("in env")
            .to_owned()
    };
    let (pg_dir, pg_bin) = (var("PG_DIR"), var("PG_BINDIR"));
    let restart = std::thread::spawn(move || {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]);
        let status = cmd
            .arg(format!("{pg_bin}/pg_ctl"))
            .args([
                "-D",
                &format!("{pg_dir}/data"),
                "-m",
                "fast",
                "-w",
                "restart",
            ])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl restart");
        assert!(status.success(), "PostgreSQL restarted");
    });
    let mut during = Vec::new();
    while !restart.is_finished() {
        for k in write(5) {
            let status = put(k).await;
            during.push(status);
            if status == 200 {
                acknowledged.push(k);
            } else {
                refused += 1;
            }
        }
    }
    restart.join().expect("restart thread");
    assert!(
        during.iter().all(|s| [200, 503].contains(s)),
        "while the database restarts a write succeeds, or fails as unavailable \
         (503 from the node, passed on by nginx): {during:?}"
    );
    // Recovered without restarting the node: writes succeed again.
    let start = Instant::now();
    loop {
        let k = write(1).start;
        if put(k).await == 200 {
            acknowledged.push(k);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the node recovers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for k in write(20) {
        assert_eq!(put(k).await, 200, "writes succeed after the recovery");
        acknowledged.push(k);
    }
    eprintln!(
        "{} writes acknowledged, {refused} refused while the database restarted",
        acknowledged.len()
    );
    // The first killed node restarts on its port and rejoins: it is listed among the live
    // nodes again and serves every acknowledged write itself.
    let out = Command::new("bash")
        .arg(Cluster::script())
        .args(["restart-node", "1"])
        .env("CLUSTER_DIR", &cluster.state)
        .env("FUNCTIONS_BIN", BIN)
        .output()
        .expect("run cluster.sh restart-node");
    assert!(
        out.status.success(),
        "restart-node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rejoined = &cluster.nodes[0];
    let start = Instant::now();
    loop {
        let r = request(
            &survivor.base,
            "GET",
            "/_admin/nodes",
            &[("authorization", &auth)],
            vec![],
        )
        .await;
        let nodes: serde_json::Value = serde_json::from_slice(&r.body).expect("nodes json");
        let listed = nodes["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["address"] == rejoined.base.as_str()));
        if listed {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the restarted node is listed by the others: {nodes}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every acknowledged write is there, read from the surviving node and the rejoined one.
    for k in &acknowledged {
        for node in [survivor, rejoined] {
            let r = request(&node.base, "GET", &format!("/writer/?k=k{k}"), &[], vec![]).await;
            assert_eq!(
                r.status, 200,
                "acknowledged write k{k} is present on {}",
                node.base
            );
        }
    }
}
