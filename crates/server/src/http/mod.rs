//! The HTTP front end: one axum router for every public surface.
//!
//! | path | what |
//! |---|---|
//! | `/<id>/<path>` | the function's `fetch` handler ([`fetch`]); with `X-RPC-Method`, an RPC call; a WebSocket upgrade the function accepts ([`socket`]) |
//! | `/_rpc/<id>` | capnweb over WebSocket (GET upgrade) or HTTP batch (POST) ([`rpc`]) |
//! | `/_admin/functions[/<id>[/rollback]]` | the admin API, bearer token ([`admin`]) |
//! | `/_admin/functions/<id>/logs` | live console output as NDJSON, bearer token ([`logs`]) |
//! | `/_metrics`, `/_health` | operations ([`ops`]) |
//!
//! Every response carries a `traceparent` header ([`trace`]). Errors are JSON
//! `{"error": {"name", "message", …}}`; the status mapping is documented in [`status`].

pub mod admin;
pub mod client_addr;
pub mod convert;
pub mod fetch;
pub mod logs;
pub mod logs_peers;
pub mod ops;
pub mod rpc;
pub mod rpc_auth;
pub mod socket;
pub mod status;
pub mod trace;
pub mod traced;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;

use crate::registry::Registry;

/// Largest request body accepted (deploys included), in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The live functions.
    pub registry: Arc<Registry>,
    /// The admin bearer token.
    pub admin_token: Arc<String>,
    /// capnweb limits for `/_rpc` sessions (clones share its buffer budget).
    pub rpc_limits: capnweb::Limits,
    /// Open `/_rpc` sessions per function and per client address.
    pub rpc_admission: capnweb::Admission,
    /// Proxies whose `X-Forwarded-For` names the client of a `/_rpc` session.
    pub trusted_proxies: Arc<client_addr::TrustedProxies>,
    /// Turns `true` when the server shuts down (ends the long-lived log streams).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// This node (for `/_admin/nodes`).
    pub node: Arc<crate::node::Node>,
    /// WebSockets functions accepted that are open now.
    pub sockets: Arc<socket::OpenSockets>,
    /// Headers whose values never appear in logs or error bodies.
    pub redact: Arc<rpc_auth::Redact>,
}

/// Builds the router.
pub fn router(state: AppState, body_limit: usize) -> Router {
    let admin = Router::new()
        .route("/_admin/functions", get(admin::list))
        .route(
            "/_admin/functions/{id}",
            get(admin::get)
                .put(admin::deploy)
                .post(admin::deploy)
                .delete(admin::delete),
        )
        .route("/_admin/functions/{id}/rollback", post(admin::rollback))
        .route("/_admin/functions/{id}/logs", get(logs::stream))
        .route("/_admin/nodes", get(admin::nodes))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ));
    Router::new()
        .route("/_health", get(ops::health))
        .route("/_metrics", get(ops::metrics))
        .route("/_rpc/{id}", any(rpc::handle))
        .merge(admin)
        .fallback(fetch::handle)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(trace::layer))
        .layer(axum::middleware::from_fn(crate::node::count_in_flight))
        .with_state(state)
}
