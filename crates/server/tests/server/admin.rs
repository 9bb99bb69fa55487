//! The admin API: deploy, list, get, delete, rollback; tokens; malformed bundles.

use serde_json::json;

use crate::common::{bundle, TestServer};

#[tokio::test]
async fn deploy_list_get_delete_round_trip() {
    let s = TestServer::start().await;
    assert_eq!(s.deploy("hello", bundle("v1", json!({}))).await, 1);
    assert_eq!(s.deploy("hello", bundle("v2", json!({}))).await, 2);
    assert_eq!(s.deploy("other", bundle("o", json!({}))).await, 1);

    let list = s.admin("GET", "/_admin/functions", None).await.json();
    let ids: Vec<_> = list["functions"]
        .as_array()
        .expect("array")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, ["hello", "other"]);

    let got = s.admin("GET", "/_admin/functions/hello", None).await;
    assert_eq!(got.status, 200);
    let got = got.json();
    assert_eq!(got["live_version"], 2);
    assert_eq!(got["versions"].as_array().expect("versions").len(), 2);
    assert_eq!(got["versions"][1]["live"], true);
    assert_eq!(got["bundle"]["bindings"]["VERSION"]["value"], "v2");

    let del = s.admin("DELETE", "/_admin/functions/hello", None).await;
    assert_eq!(del.status, 200);
    assert_eq!(
        s.admin("GET", "/_admin/functions/hello", None).await.status,
        404
    );
    assert_eq!(s.request("GET", "/hello/", &[], "").await.status, 404);
    assert_eq!(
        s.admin("DELETE", "/_admin/functions/hello", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn wrong_or_missing_admin_token_is_refused_with_401_and_nothing_changes() {
    let s = TestServer::start().await;
    s.deploy("keep", bundle("v1", json!({}))).await;
    let body = bundle("evil", json!({})).to_string();
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong-token")],
        vec![("authorization", "test-admin-token")],
        vec![("authorization", "Basic dGVzdA==")],
    ] {
        for (method, path) in [
            ("PUT", "/_admin/functions/keep"),
            ("POST", "/_admin/functions/new"),
            ("DELETE", "/_admin/functions/keep"),
            ("POST", "/_admin/functions/keep/rollback"),
            ("GET", "/_admin/functions"),
        ] {
            let r = s.request(method, path, &headers, body.clone()).await;
            assert_eq!(r.status, 401, "{method} {path} with {headers:?}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            assert_eq!(r.json()["error"]["name"], "Unauthorized");
        }
    }
    let list = s.admin("GET", "/_admin/functions", None).await.json();
    assert_eq!(list["functions"].as_array().expect("array").len(), 1);
    assert_eq!(list["functions"][0]["live_version"], 1);
    let v = s.rpc("keep", "version", json!([])).await.json();
    assert_eq!(v["result"]["label"], "v1");
}

#[tokio::test]
async fn malformed_manifests_are_refused_with_clear_errors_and_nothing_changes() {
    let s = TestServer::start().await;
    s.deploy("app", bundle("good", json!({}))).await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("app", "{not json".into(), "bundle is not valid"),
        ("app", json!({"modules": {"a.js": "x"}}).to_string(), "mainModule"),
        (
            "app",
            bundle("x", json!({"K": {"type": "kv"}})).to_string(),
            "bindings.K.namespace",
        ),
        (
            "app",
            bundle("x", json!({"K": {"type": "queue"}})).to_string(),
            "unknown binding type",
        ),
        (
            "app",
            json!({"mainModule": "index.js", "modules": {"index.js": "export default { <<syntax error>> }"}})
                .to_string(),
            "SyntaxError",
        ),
    ];
    for (id, body, needle) in cases {
        let r = s
            .request(
                "PUT",
                &format!("/_admin/functions/{id}"),
                &[("authorization", "Bearer test-admin-token")],
                body.clone(),
            )
            .await;
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json()["error"]["message"]
            .as_str()
            .expect("message")
            .to_owned();
        assert!(
            msg.contains(needle),
            "{body}: {msg:?} should mention {needle:?}"
        );
    }
    for bad_id in ["_reserved", "Upper", "a_b"] {
        let r = s
            .admin(
                "PUT",
                &format!("/_admin/functions/{bad_id}"),
                Some(bundle("x", json!({}))),
            )
            .await;
        assert_eq!(r.status, 400, "{bad_id}");
        assert_eq!(r.json()["error"]["name"], "InvalidFunctionId");
    }
    let got = s.admin("GET", "/_admin/functions/app", None).await.json();
    assert_eq!(got["live_version"], 1);
    assert_eq!(got["versions"].as_array().expect("versions").len(), 1);
    let list = s.admin("GET", "/_admin/functions", None).await.json();
    assert_eq!(list["functions"].as_array().expect("array").len(), 1);
}

#[tokio::test]
async fn rollback_makes_the_previous_version_live_and_409_when_there_is_none() {
    let s = TestServer::start().await;
    s.deploy("app", bundle("v1", json!({}))).await;
    let r = s
        .admin("POST", "/_admin/functions/app/rollback", None)
        .await;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    s.deploy("app", bundle("v2", json!({}))).await;
    assert_eq!(
        s.rpc("app", "version", json!([])).await.json()["result"]["label"],
        "v2"
    );
    let r = s
        .admin("POST", "/_admin/functions/app/rollback", None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"], 1);
    assert_eq!(
        s.rpc("app", "version", json!([])).await.json()["result"]["label"],
        "v1"
    );
    let fetched = s.request("GET", "/app/", &[], "").await;
    assert_eq!(fetched.header("x-function-version"), Some("1"));
    assert_eq!(
        s.admin("POST", "/_admin/functions/nope/rollback", None)
            .await
            .status,
        404
    );
}

#[cfg(unix)]
#[tokio::test]
async fn data_directory_store_and_token_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("tempdir");
    // A data directory that does not exist yet, and one that exists with wide modes.
    for (dir, existed) in [
        (parent.path().join("new/data"), false),
        (parent.path().join("old"), true),
    ] {
        if existed {
            std::fs::create_dir(&dir).expect("mkdir");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            let store = dir.join(server::server::STORE_FILE);
            std::fs::write(&store, b"").expect("empty store file");
            std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
        }
        let config = server::Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.clone(),
            ..server::Config::default()
        };
        let srv = server::Server::start(config, std::sync::Arc::new(server::CannedHost::new()))
            .await
            .expect("starts");
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
        };
        assert_eq!(mode(&dir), 0o700, "{dir:?}");
        assert_eq!(mode(&dir.join(server::server::STORE_FILE)), 0o600);
        assert_eq!(mode(&dir.join(server::token::TOKEN_FILE)), 0o600);
        srv.shutdown().await.expect("stops");
    }
}
