//! How failures map to HTTP statuses, in one place.
//!
//! | failure | status | `error.name` |
//! |---|---|---|
//! | X-RPC body is not JSON | 400 | `SyntaxError` |
//! | X-RPC body is not a JSON array, or a bad method name | 400 | `TypeError` |
//! | no such function (or an id that cannot be one) | 404 | `NotFound` |
//! | the function threw (fetch or RPC method, including unknown methods) | 500 | the thrown error's name, with its own properties |
//! | the function has no handler of that kind | 501 | `Error` |
//! | a memory/CPU limit stopped the call, or the host is unavailable | 503 | `RangeError` / `Error` |
//! | missing or wrong admin token | 401 | `Unauthorized` |
//! | malformed bundle, bad id, code that fails to load | 400 | `ManifestError` / `InvalidFunctionId` / `CheckFailed` |
//! | rollback with no older version | 409 | `Conflict` |
//! | a body over the size limit | 413 | `TooLarge` |
//! | the store cannot be reached (shared database down) | 503 with `Retry-After: 1` | `StorageUnavailable` |
//! | the function let a binding's `StorageUnavailableError` escape | 503 with `Retry-After: 1` | `StorageUnavailableError` |
//! | the store failed | 500 | `StorageError` |

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use capnweb::{RpcError, Value};
use serde_json::json;
use store::StoreError;

use crate::host::HostError;
use crate::registry::RegistryError;

/// A JSON response with `status`.
pub fn json(status: u16, body: serde_json::Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

/// `v` with integral numbers written as integers (`5`, not `5.0`): JavaScript has one number
/// type, and a JSON answer should read as `JSON.stringify` would write it.
pub fn js_numbers(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0 => {
                J::from(f as i64)
            }
            _ => J::Number(n),
        },
        J::Array(a) => J::Array(a.into_iter().map(js_numbers).collect()),
        J::Object(o) => J::Object(o.into_iter().map(|(k, v)| (k, js_numbers(v))).collect()),
        other => other,
    }
}

/// `{"error": {"name", "message"}}` with `status`.
pub fn error(status: u16, name: &str, message: impl Into<String>) -> Response {
    json(
        status,
        json!({ "error": { "name": name, "message": message.into() } }),
    )
}

/// The `error` object for a thrown value: `{name, message, ...own properties}` (no stack).
pub fn thrown_json(e: &RpcError) -> serde_json::Value {
    match e.value() {
        Value::Error(_) => {
            let mut v = e.value().to_json();
            if let Some(o) = v.as_object_mut() {
                o.remove("stack");
            }
            v
        }
        other => json!({ "name": "Error", "message": e.message(), "value": other.to_json() }),
    }
}

/// A failed host call as a response (`Retry-After: 1` with an uncaught storage outage).
pub fn host_error(e: &HostError) -> Response {
    let mut response = json(
        e.status(),
        json!({ "error": thrown_json(&e.to_rpc_error()) }),
    );
    if e.is_storage_unavailable() {
        retry_soon(&mut response);
    }
    response
}

/// Marks a 503 as worth retrying in a second.
fn retry_soon(response: &mut Response) {
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
}

/// A failed store call as a response.
pub fn store_error(e: &StoreError) -> Response {
    if e.is_unavailable() {
        let mut response = error(503, "StorageUnavailable", e.to_string());
        retry_soon(&mut response);
        return response;
    }
    let (status, name) = match e {
        StoreError::InvalidFunctionId { .. } => (400, "InvalidFunctionId"),
        e if e.is_not_found() => (404, "NotFound"),
        StoreError::NoPreviousVersion { .. } => (409, "Conflict"),
        StoreError::TooLarge { .. } => (413, "TooLarge"),
        e if e.is_client_error() => (400, "BadRequest"),
        _ => (500, "StorageError"),
    };
    error(status, name, e.to_string())
}

/// A failed registry call as a response.
pub fn registry_error(e: &RegistryError) -> Response {
    match e {
        RegistryError::Store(s) => store_error(s),
        RegistryError::Manifest(m) => error(400, "ManifestError", m.to_string()),
        RegistryError::Build(b) => error(400, "BuildError", b.to_string()),
        RegistryError::Check(HostError::InvalidCode(m)) => error(400, "CheckFailed", m.clone()),
        RegistryError::Check(h) => error(h.status(), "CheckFailed", h.to_string()),
        RegistryError::Corrupt { .. } | RegistryError::Task(_) => {
            error(500, "StorageError", e.to_string())
        }
    }
}

/// 404 for an unknown function.
pub fn not_found(id: &str) -> Response {
    error(
        404,
        "NotFound",
        format!("no function named {id:?} is deployed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncaught_storage_outage_is_503_with_retry_after_and_other_throws_are_500() {
        let outage = HostError::Thrown(RpcError::new(
            crate::bindings::STORAGE_UNAVAILABLE_ERROR,
            "the store cannot be reached",
        ));
        let r = host_error(&outage);
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.headers()
                .get(axum::http::header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        let thrown = HostError::Thrown(RpcError::type_error("bad input"));
        let r = host_error(&thrown);
        assert_eq!(r.status(), 500);
        assert!(r.headers().get(axum::http::header::RETRY_AFTER).is_none());
    }
}
