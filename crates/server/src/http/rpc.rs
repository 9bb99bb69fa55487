//! `/_rpc/<id>`: capnweb with the function's RPC target as the main capability, over a
//! WebSocket (GET with `Upgrade: websocket`) or HTTP batch (POST, newline-separated
//! messages). Every method call on the main capability is metered.
//!
//! A session is bound to the version that was live when it opened: a deploy or rollback does
//! not change what an open WebSocket session talks to (reconnect to reach the new version).

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use capnweb::transport::{batch, websocket};

use super::metered::MeteredTarget;
use super::{status, AppState};

/// Largest HTTP batch body, in bytes.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Handles both transports.
pub async fn handle(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
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
    let target = match state
        .registry
        .host()
        .rpc_target(function.clone(), None)
        .await
    {
        Ok(t) => MeteredTarget::wrap(t, &function.id, "rpc_session"),
        Err(e) => return status::host_error(&e),
    };
    let limits = state.rpc_limits.clone();
    if is_upgrade {
        let (mut parts, _) = req.into_parts();
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(ws) => ws,
            Err(rejection) => return rejection.into_response(),
        };
        let ws = ws.read_buffer_size(capnweb::transport::websocket::READ_BUFFER_SIZE);
        return ws.on_upgrade(move |socket| async move {
            websocket::serve_axum(socket, target, limits).await;
            drop(function);
        });
    }
    let body = match axum::body::to_bytes(req.into_body(), MAX_BATCH_BYTES).await {
        Ok(b) => b,
        Err(_) => return status::error(413, "TooLarge", "batch body is too large"),
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return status::error(400, "TypeError", "batch body must be UTF-8");
    };
    let answer = batch::serve_batch(&body, target, limits).await;
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        answer,
    )
        .into_response()
}
