//! `/<id>/<path>`: the function's `fetch` handler, or with `X-RPC-Method` one RPC method.
//!
//! The function sees the URL without the id prefix: `/hello/users/42?q=1` reaches `hello`
//! as `http://<host>/users/42?q=1`, where `<host>` is the request's `Host` header.
//!
//! With `X-RPC-Method: <name>`, the body is a JSON array of arguments (an empty body is no
//! arguments) and the answer is `{"result": …}` (200) or `{"error": {name, message, …}}`
//! with the status from [`super::status`].

use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use capnweb::Value;
use serde_json::json;

use super::status;
use super::AppState;

/// The header that turns a request into an RPC call.
pub const RPC_METHOD_HEADER: &str = "x-rpc-method";

/// Splits `/<id>/<rest>` into the id and the path the function sees (`/` at least).
pub fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    match trimmed.find('/') {
        Some(i) => (&trimmed[..i], &trimmed[i..]),
        None => (trimmed, "/"),
    }
}

/// The fallback handler: every path that is not a reserved `/_…` surface.
pub async fn handle(
    State(state): State<AppState>,
    upgrade: super::socket::Upgrade,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let (id, rest) = split_path(uri.path());
    if id.is_empty() {
        return status::error(
            404,
            "NotFound",
            "no function id in the path: use /<function-id>/…",
        );
    }
    let function = match state.registry.live(id).await {
        Ok(Some(f)) => f,
        Ok(None) => return status::not_found(id),
        Err(e) => return status::registry_error(&e),
    };
    if let Some(rpc_method) = headers.get(RPC_METHOD_HEADER) {
        let Ok(rpc_method) = rpc_method.to_str() else {
            return status::error(400, "TypeError", "X-RPC-Method must be ASCII");
        };
        // A function with no RPC surface for this method (a plain `export default { fetch }`)
        // gets the request on its fetch handler, header included, and may read it itself.
        let to_fetch = state
            .registry
            .host()
            .rpc_header_goes_to_fetch(function.clone(), rpc_method.to_owned())
            .await;
        match to_fetch {
            Ok(true) => {}
            Ok(false) => return rpc_call(&state, function, rpc_method.to_owned(), &body).await,
            Err(e) => {
                tracing::warn!(function = %function.id, error = %e, "load failed");
                return status::host_error(&e);
            }
        }
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let url = match uri.query() {
        Some(q) => format!("http://{host}{rest}?{q}"),
        None => format!("http://{host}{rest}"),
    };
    let request = super::convert::request_value(&method, url, &headers, body);
    if let Some(ws) = upgrade.ws {
        return super::socket::answer(&state, function, ws, upgrade.peer, &headers, request).await;
    }
    let result = state.registry.host().fetch(function.clone(), request).await;
    match result {
        Ok(resp) => super::convert::response(resp),
        Err(e) => {
            let error = state.redact.scrub(&headers, &e.to_string());
            tracing::warn!(function = %function.id, %error, "fetch failed");
            status::host_error(&e)
        }
    }
}

async fn rpc_call(
    state: &AppState,
    function: std::sync::Arc<crate::host::Function>,
    method: String,
    body: &[u8],
) -> Response {
    if method.is_empty() || method.len() > 256 {
        return status::error(
            400,
            "TypeError",
            "X-RPC-Method must name a method (1 to 256 bytes)",
        );
    }
    let args: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!([])
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return status::error(400, "SyntaxError", format!("request body is not JSON: {e}"))
            }
        }
    };
    let Some(args) = args.as_array() else {
        return status::error(
            400,
            "TypeError",
            "request body must be a JSON array of arguments",
        );
    };
    let args: Vec<Value> = args.iter().map(Value::from_json).collect();
    let target = match state
        .registry
        .host()
        .rpc_target(function.clone(), None)
        .await
    {
        Ok(t) => t,
        Err(e) => return status::host_error(&e),
    };
    let result = target.call(&method, args).await;
    match result {
        Ok(v) => status::json(200, json!({ "result": status::js_numbers(v.to_json()) })),
        Err(e) => {
            let code = if e.name() == isolate::RESOURCE_LIMIT_ERROR {
                503
            } else {
                500
            };
            status::json(
                code,
                json!({ "error": status::js_numbers(status::thrown_json(&e)) }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn path_is_split_into_id_and_the_rest() {
        assert_eq!(split_path("/hello/users/42"), ("hello", "/users/42"));
        assert_eq!(split_path("/hello"), ("hello", "/"));
        assert_eq!(split_path("/hello/"), ("hello", "/"));
        assert_eq!(split_path("/"), ("", "/"));
    }
}
