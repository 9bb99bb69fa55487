//! Inherited limits on the Worker Loader's host: deploy limits above the host's maximum are
//! refused, a function's children run with at most its limits, and a deploy, rollback or
//! delete stops the children of the versions it retires.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use server::{LoaderHost, ManifestError};

use crate::common::{code, TestServer};

fn host_with_max(cpu_ms: u64, memory_mb: usize) -> Arc<LoaderHost> {
    Arc::new(LoaderHost::with_config(loader::LoaderConfig {
        max_limits: loader::Limits {
            cpu_time: Duration::from_millis(cpu_ms),
            memory_bytes: memory_mb * 1024 * 1024,
            ..loader::Limits::default()
        },
        ..loader::LoaderConfig::default()
    }))
}

const FETCH_OK: &str = "export default { fetch() { return new Response('ok') } }";

#[tokio::test]
async fn a_deploy_with_limits_above_the_hosts_maximum_is_refused_with_400() {
    let s = TestServer::start_with(host_with_max(2000, 64)).await;
    for (limits, field) in [
        (json!({ "cpuMs": 2001 }), "limits.cpuMs"),
        (json!({ "memoryMb": 65 }), "limits.memoryMb"),
    ] {
        let mut b = code(FETCH_OK, json!({}));
        b["limits"] = limits.clone();
        let r = s.admin("PUT", "/_admin/functions/f", Some(b)).await;
        assert_eq!(
            r.status,
            400,
            "{limits}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let e = &r.json()["error"];
        assert_eq!(e["name"], "ManifestError");
        let msg = e["message"].as_str().unwrap_or_default();
        assert!(msg.contains(field) && msg.contains("maximum"), "{msg}");
    }
    // Nothing was stored.
    assert_eq!(
        s.admin("GET", "/_admin/functions/f", None).await.status,
        404
    );
    let mut b = code(FETCH_OK, json!({}));
    b["limits"] = json!({ "cpuMs": 2000, "memoryMb": 64 });
    s.deploy("f", b).await;
    assert_eq!(s.request("GET", "/f/", &[], "").await.body, b"ok");
}

#[test]
fn limits_are_checked_against_a_maximum_naming_the_field() {
    let max = server::manifest::MaxLimits {
        cpu_ms: 100,
        memory_mb: 8,
    };
    let within = server::manifest::Limits {
        cpu_ms: Some(100),
        memory_mb: Some(8),
    };
    assert_eq!(within.check_within(&max), Ok(()));
    let over = server::manifest::Limits {
        cpu_ms: Some(101),
        memory_mb: None,
    };
    assert!(matches!(
        over.check_within(&max),
        Err(ManifestError::Invalid { ref field, .. }) if field == "limits.cpuMs"
    ));
    assert_eq!(server::manifest::MaxLimits::default().cpu_ms, 30_000);
    assert_eq!(server::manifest::MaxLimits::default().memory_mb, 512);
}

const PARENT: &str = r#"
import { RpcTarget } from "cloudflare:workers";
const CHILD = `
  import { RpcTarget } from "cloudflare:workers";
  class Child extends RpcTarget {
    constructor(ctx, env) { super(); this.env = env; }
    version() { return this.env.VERSION; }
    spin() { for (;;) {} }
  }
  export default { rpc: Child };
`;
class Api extends RpcTarget {
  constructor(ctx, env) { super(); this.env = env; }
  child() {
    return this.env.LOADER.get("child", () => ({
      mainModule: "c.js", modules: { "c.js": CHILD },
      env: { VERSION: this.env.VERSION }, limits: { cpuMs: 1e9 },
    })).getRpcTarget();
  }
  version() { return this.child().version(); }
  async spin() {
    try { await this.child().spin(); return "no error"; } catch (e) { return e.message; }
  }
}
export default { rpc: Api };
"#;

fn parent(version: &str) -> serde_json::Value {
    let mut b = code(PARENT, json!({ "LOADER": { "type": "loader" } }));
    b["env"] = json!({ "VERSION": version });
    b["limits"] = json!({ "cpuMs": 150 });
    b
}

#[tokio::test]
async fn a_functions_children_run_within_its_limits() {
    let s = TestServer::start_js().await;
    s.deploy("p", parent("1")).await;
    let r = s.rpc("p", "spin", json!([])).await;
    assert_eq!(
        r.json(),
        json!({ "result": "CPU time limit of 150 ms exceeded" }),
        "the child asked for 1e9 ms and got its parent's 150"
    );
}

#[tokio::test]
async fn deploy_rollback_and_delete_stop_the_children_of_retired_versions() {
    let host = Arc::new(LoaderHost::new());
    let s = TestServer::start_with(host.clone()).await;
    let v1 = s.deploy("p", parent("1")).await;
    assert_eq!(s.rpc("p", "version", json!([])).await.json()["result"], "1");
    let c1 = host.children_of("p", v1).expect("version 1 has children");
    assert_eq!(c1.resident(), 1);

    let v2 = s.deploy("p", parent("2")).await;
    assert!(c1.is_closed(), "a deploy closes the old version's children");
    assert_eq!(c1.resident(), 0);
    assert!(host.children_of("p", v1).is_none());
    assert_eq!(s.rpc("p", "version", json!([])).await.json()["result"], "2");
    let c2 = host.children_of("p", v2).expect("version 2 has children");

    let r = s.admin("POST", "/_admin/functions/p/rollback", None).await;
    assert_eq!(r.status, 200);
    assert!(
        c2.is_closed(),
        "a rollback closes the retired version's children"
    );
    assert_eq!(s.rpc("p", "version", json!([])).await.json()["result"], "1");
    let c1_again = host.children_of("p", v1).expect("version 1 again");
    assert!(!c1_again.is_closed());

    let r = s.admin("DELETE", "/_admin/functions/p", None).await;
    assert_eq!(r.status, 200);
    assert!(
        c1_again.is_closed(),
        "a delete closes every version's children"
    );
    assert!(host.children_of("p", v1).is_none());
}

#[tokio::test]
async fn a_function_loading_many_big_children_holds_at_most_its_own_memory_limit() {
    // Twenty children of 6 MiB each from JavaScript, under a 32 MiB function: before, all
    // twenty stayed resident (over 120 MiB); now the least recently used are evicted.
    const LOADS_BIG_CHILDREN: &str = r#"
import { RpcTarget } from "cloudflare:workers";
const CHILD = `
  import { RpcTarget } from "cloudflare:workers";
  const kept = new Uint8Array(6 * 1024 * 1024).fill(1);
  export default { rpc: class extends RpcTarget { size() { return kept.length; } } };
`;
export default { rpc: class extends RpcTarget {
  constructor(ctx, env) { super(); this.env = env; }
  async load(n) {
    let total = 0;
    for (let i = 0; i < n; i++) {
      const c = this.env.LOADER.get("c" + i, () => ({ mainModule: "c.js", modules: { "c.js": CHILD } }));
      total += await c.getRpcTarget().size();
    }
    return total;
  }
} };
"#;
    let host = Arc::new(LoaderHost::new());
    let s = TestServer::start_with(host.clone()).await;
    let mut b = code(
        LOADS_BIG_CHILDREN,
        json!({ "LOADER": { "type": "loader" } }),
    );
    b["limits"] = json!({ "memoryMb": 32 });
    let v = s.deploy("big", b).await;
    let r = s.rpc("big", "load", json!([20])).await;
    assert_eq!(
        r.json()["result"],
        json!(20 * 6 * 1024 * 1024),
        "{:?}",
        r.json()
    );
    let children = host.children_of("big", v).expect("children");
    assert!(
        children.memory_usage() <= 32 * 1024 * 1024,
        "{} bytes in {} children",
        children.memory_usage(),
        children.resident()
    );
    assert!(children.resident() < 20, "{} resident", children.resident());
}
