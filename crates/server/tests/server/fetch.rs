//! `/<id>/<path>`: fetch and X-RPC-Method.

use serde_json::json;

use crate::common::{bundle, TestServer};

#[tokio::test]
async fn fetch_sees_the_url_without_the_id_prefix_and_keeps_method_headers_and_body() {
    let s = TestServer::start().await;
    s.deploy("hello", bundle("v1", json!({}))).await;
    let r = s
        .request(
            "POST",
            "/hello/users/42?q=1",
            &[("x-custom", "yes")],
            "payload",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-function-version"), Some("1"));
    let j = r.json();
    let host = s.base.trim_start_matches("http://");
    assert_eq!(j["url"], format!("http://{host}/users/42?q=1"));
    assert_eq!(j["method"], "POST");
    assert_eq!(j["headers"]["x-custom"], "yes");
    assert_eq!(j["body"], "payload");
    assert_eq!(j["label"], "v1");

    let root = s.request("GET", "/hello", &[], "").await.json();
    assert_eq!(root["url"], format!("http://{host}/"));
}

#[tokio::test]
async fn fetch_keeps_the_status_the_function_chose_and_maps_a_throw_to_500() {
    let s = TestServer::start().await;
    s.deploy("hello", bundle("v1", json!({}))).await;
    assert_eq!(
        s.request("GET", "/hello/status/418", &[], "").await.status,
        418
    );
    let r = s.request("GET", "/hello/throw", &[], "").await;
    assert_eq!(r.status, 500);
    let e = r.json();
    assert_eq!(e["error"]["name"], "Error");
    assert_eq!(e["error"]["message"], "boom");
    assert_eq!(e["error"]["code"], "E_BOOM");
}

#[tokio::test]
async fn unknown_function_or_reserved_prefix_is_404() {
    let s = TestServer::start().await;
    for path in ["/nope/x", "/_nope/x", "/", "/Bad/x"] {
        let r = s.request("GET", path, &[], "").await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["error"]["name"], "NotFound");
    }
}

#[tokio::test]
async fn x_rpc_method_answers_result_json() {
    let s = TestServer::start().await;
    s.deploy("calc", bundle("v1", json!({}))).await;
    let r = s.rpc("calc", "add", json!([2, 3])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"result": 5}));
    let r = s.rpc("calc", "echo", json!([{"a": [1, "x", null]}])).await;
    assert_eq!(r.json(), json!({"result": {"a": [1, "x", null]}}));
    // Any path under the function works, and an empty body is no arguments.
    let r = s
        .request("POST", "/calc/any/path", &[("x-rpc-method", "version")], "")
        .await;
    assert_eq!(r.json()["result"]["label"], "v1");
}

#[tokio::test]
async fn x_rpc_method_errors_map_to_400_404_and_500_with_error_properties() {
    let s = TestServer::start().await;
    s.deploy("calc", bundle("v1", json!({}))).await;
    let bad_json = s
        .request("POST", "/calc/", &[("x-rpc-method", "add")], "[1,")
        .await;
    assert_eq!(bad_json.status, 400);
    assert_eq!(bad_json.json()["error"]["name"], "SyntaxError");

    let not_array = s.rpc("calc", "add", json!({"a": 1})).await;
    assert_eq!(not_array.status, 400);
    assert_eq!(not_array.json()["error"]["name"], "TypeError");

    let unknown_fn = s.rpc("nope", "add", json!([])).await;
    assert_eq!(unknown_fn.status, 404);

    let thrown = s.rpc("calc", "fail", json!(["bad input"])).await;
    assert_eq!(thrown.status, 500);
    assert_eq!(
        thrown.json(),
        json!({"error": {"name": "RangeError", "message": "bad input", "code": "E_FAIL"}})
    );

    let unknown_method = s.rpc("calc", "nope", json!([])).await;
    assert_eq!(unknown_method.status, 500);
    assert_eq!(unknown_method.json()["error"]["name"], "TypeError");
}

/// A missing fetch handler is known from the module, not guessed from an error's text: a
/// handler that throws a TypeError saying "has no fetch() handler" is a 500 like any other
/// throw, and a module without one answers 501.
#[tokio::test]
async fn a_missing_fetch_handler_is_501_and_a_throw_that_says_so_is_not() {
    let s = crate::common::TestServer::start_js().await;
    s.deploy(
        "nofetch",
        crate::common::code(
            "import { WorkerEntrypoint } from 'cloudflare:workers'; \
             export default class extends WorkerEntrypoint { hi() { return 1; } }",
            serde_json::json!({}),
        ),
    )
    .await;
    s.deploy(
        "liar",
        crate::common::code(
            "export default { fetch() { throw new TypeError('the default export has no fetch() handler'); } }",
            serde_json::json!({}),
        ),
    )
    .await;
    assert_eq!(s.request("GET", "/nofetch/", &[], "").await.status, 501);
    assert_eq!(s.request("GET", "/liar/", &[], "").await.status, 500);
}
