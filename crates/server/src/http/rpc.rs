//! `/_rpc/<id>`: capnweb with the function's RPC target as the main capability, over a
//! WebSocket (GET with `Upgrade: websocket`) or HTTP batch (POST, newline-separated
//! messages). Every method call on the main capability carries the trace of the request that
//! opened the session ([`super::traced`]); calls are counted where they run (the isolate).
//!
//! A session is bound to the version that was live when it opened: a deploy or rollback does
//! not change what an open WebSocket session talks to (reconnect to reach the new version).
//!
//! Sessions live under the capnweb limits table ([`capnweb::limits`]): the caps on sessions per
//! function and per client address are checked here, before a session starts, and a session
//! refused says so the table's way ([`capnweb::Refusal`]): WebSocket close 1013, or batch 503
//! with `Retry-After`.

use std::net::SocketAddr;

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use capnweb::transport::{batch, websocket};
use capnweb::{AdmissionTicket, Limits, Refusal};

use super::traced::TracedTarget;
use super::{status, AppState};

/// Seconds a client refused with 503 is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// Handles both transports.
pub async fn handle(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    // Present when the server was started with connect info (it always is; tests that build
    // the router alone count every session under the function only).
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let function = match state.registry.live(&id).await {
        Ok(Some(f)) => f,
        Ok(None) => return status::not_found(&id),
        Err(e) => return status::registry_error(&e),
    };
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let method = req.method().clone();
    if !(is_upgrade && method == Method::GET) && method != Method::POST {
        return status::error(
            405,
            "MethodNotAllowed",
            "use a WebSocket upgrade (GET) or an HTTP batch (POST)",
        );
    }
    let limits = state.rpc_limits.clone();
    let (mut parts, body) = req.into_parts();
    let ticket = admit(&state, &id, peer, &parts.headers, &limits);
    let request = super::rpc_auth::session_request(
        &state,
        &id,
        &parts.method,
        &parts.uri,
        &parts.headers,
        peer,
    );
    if is_upgrade {
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(ws) => websocket::axum_upgrade(ws, &limits),
            Err(rejection) => return rejection.into_response(),
        };
        let ticket = match ticket {
            Ok(t) => t,
            Err(reason) => return refuse_upgrade(ws, reason),
        };
        let target = match target(&state, &function, request, &parts.headers).await {
            Ok(t) => t,
            Err(response) => return response,
        };
        return ws.on_upgrade(move |socket| async move {
            websocket::serve_axum(socket, target, limits).await;
            drop(ticket);
            drop(function);
        });
    }
    let ticket = match ticket {
        Ok(t) => t,
        Err(reason) => return overloaded(&reason),
    };
    let target = match target(&state, &function, request, &parts.headers).await {
        Ok(t) => t,
        Err(response) => return response,
    };
    let cap = limits.max_batch_bytes();
    let body = match axum::body::to_bytes(body, cap).await {
        Ok(b) => b,
        Err(_) => {
            return status::error(
                Refusal::FrameTooLarge.http_status(),
                "TooLarge",
                format!(
                    "batch body is larger than {cap} bytes (3 bytes per code unit of the largest \
                     message)"
                ),
            )
        }
    };
    // The body is held while the batch runs: it counts against the shared budget.
    let Some(_reserved) = limits.budget.try_reserve(body.len()) else {
        return overloaded(&format!(
            "server is over its buffer budget of {} bytes shared by all sessions",
            limits.budget.limit()
        ));
    };
    let Ok(body) = String::from_utf8(body.into()) else {
        return status::error(400, "TypeError", "batch body must be UTF-8");
    };
    let answer = batch::answer_batch(&body, target, limits).await;
    drop(ticket);
    if answer.refusal == Some(Refusal::Overloaded) {
        return overloaded(&format!(
            "server is over its buffer budget of {} bytes shared by all sessions",
            state.rpc_limits.budget.limit()
        ));
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        answer.body,
    )
        .into_response()
}

/// The session's main capability, traced: what the function's `authenticate` hook gives
/// this caller, or its RPC target (with `ctx.request`); a refusal is the response to send.
async fn target(
    state: &AppState,
    function: &std::sync::Arc<crate::host::Function>,
    request: capnweb::RequestValue,
    headers: &HeaderMap,
) -> Result<capnweb::Stub, Response> {
    match state
        .registry
        .host()
        .rpc_session(function.clone(), request)
        .await
    {
        Ok(isolate::RpcSession::Main(t)) => Ok(TracedTarget::wrap(t, &function.id)),
        Ok(isolate::RpcSession::Refused(response)) => Err(super::convert::response(response)),
        Err(crate::host::HostError::Thrown(e)) => {
            Err(super::rpc_auth::refused(state, &function.id, headers, &e))
        }
        Err(e) => Err(status::host_error(&e)),
    }
}

/// Accepts the upgrade only to close it at once with 1013 and `reason` (over a session cap).
pub(crate) fn refuse_upgrade(ws: WebSocketUpgrade, reason: String) -> Response {
    ws.on_upgrade(move |mut socket| async move {
        let close = Message::Close(Some(CloseFrame {
            code: Refusal::Overloaded.close_code(),
            reason: close_reason(&reason).into(),
        }));
        let _ = socket.send(close).await;
    })
}

/// Takes a place for one session under the per-function and per-address caps, or says why
/// not. WebSockets a function accepts on its own URL count as sessions too.
pub(crate) fn admit(
    state: &AppState,
    id: &str,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    limits: &Limits,
) -> Result<AdmissionTicket, String> {
    let mut keys = vec![(format!("function {id}"), limits.max_sessions_per_function)];
    if let Some(ip) = state.trusted_proxies.client(peer, headers) {
        keys.push((
            format!("client address {ip}"),
            limits.max_sessions_per_address,
        ));
    }
    state
        .rpc_admission
        .try_admit(&keys)
        .map_err(|e| e.to_string())
}

/// A WebSocket close reason holds at most 123 bytes.
fn close_reason(reason: &str) -> &str {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    &reason[..cut]
}

/// 503 with `Retry-After`: the table's answer when the server is over a budget or a cap.
fn overloaded(reason: &str) -> Response {
    let mut response = status::error(Refusal::Overloaded.http_status(), "Overloaded", reason);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(RETRY_AFTER_SECS),
    );
    response
}
