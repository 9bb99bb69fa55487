//! `/_admin/…`: deploy, list, inspect, delete and roll back functions. Every route needs
//! `Authorization: Bearer <admin token>`; a missing or wrong token is a 401 and the request
//! is not looked at further (its body is not even read).
//!
//! | request | answer |
//! |---|---|
//! | `PUT`/`POST /_admin/functions/<id>[?note=…]` with a bundle ([`crate::manifest`]) | `{"id", "version"}` |
//! | `GET /_admin/functions` | `{"functions": [{id, live_version, latest_version, versions, created_at, updated_at}]}` |
//! | `GET /_admin/functions/<id>` | the summary plus `versions: [{version, created_at, note, size, live}]`, `bundle` (the live bundle, canonical JSON) and `storage: [{binding, type, name, bytes, keys, maxBytes, maxKeys}]` (each KV/blob binding's usage and quota) |
//! | `DELETE /_admin/functions/<id>` | `{"id", "deleted": true}` or 404 |
//! | `POST /_admin/functions/<id>/rollback` | `{"id", "version"}` (the version now live), 404, or 409 with nothing older |
//! | `GET /_admin/functions/<id>/logs` | live console output as NDJSON, or 404 (see [`super::logs`]) |
//! | `GET /_admin/nodes` | `{"nodes": [{id, address, version, started_at, heartbeat_at, resident_isolates, in_flight, self}]}`: the nodes that reported within 15 s (on the embedded store, this node alone) |

use axum::extract::{Path, Query, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::{status, AppState};
use crate::manifest::Bundle;

/// Compares in time independent of where the strings differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: refuses a request without the right bearer token.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), state.admin_token.as_bytes()) => {
            next.run(req).await
        }
        _ => {
            let mut resp = status::error(
                401,
                "Unauthorized",
                "a valid admin token is required: send `Authorization: Bearer <token>`",
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            resp
        }
    }
}

/// Query of a deploy.
#[derive(Debug, Deserialize)]
pub struct DeployQuery {
    /// A note stored with the version.
    note: Option<String>,
}

/// Deploys a bundle as the new live version.
pub async fn deploy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DeployQuery>,
    body: bytes::Bytes,
) -> Response {
    if let Err(e) = store::validate_function_id(&id) {
        return status::store_error(&e);
    }
    let bundle = match Bundle::from_json(&body) {
        Ok(b) => b,
        Err(e) => return status::error(400, "ManifestError", e.to_string()),
    };
    match state.registry.deploy(&id, bundle, query.note).await {
        Ok(version) => {
            crate::metrics::record_deploy(&id);
            status::json(200, json!({ "id": id, "version": version }))
        }
        Err(e) => status::registry_error(&e),
    }
}

/// Lists every function.
pub async fn list(State(state): State<AppState>) -> Response {
    match state.registry.list().await {
        Ok(list) => status::json(200, json!({ "functions": list })),
        Err(e) => status::registry_error(&e),
    }
}

/// One function with its versions and live bundle.
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let (info, versions) = match state.registry.info(&id).await {
        Ok(Some(x)) => x,
        Ok(None) => return status::not_found(&id),
        Err(e) => return status::registry_error(&e),
    };
    let bundle = match state.registry.live(&id).await {
        Ok(Some(f)) => f.bundle.to_json(),
        Ok(None) => serde_json::Value::Null,
        Err(e) => return status::registry_error(&e),
    };
    let storage = match state.registry.storage(&id).await {
        Ok(s) => s,
        Err(e) => return status::registry_error(&e),
    };
    let mut out = serde_json::to_value(&info).unwrap_or_default();
    out["versions"] = json!(versions);
    out["bundle"] = bundle;
    out["storage"] = json!(storage);
    status::json(200, out)
}

/// Deletes a function and all its versions.
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.registry.delete(&id).await {
        Ok(true) => status::json(200, json!({ "id": id, "deleted": true })),
        Ok(false) => status::not_found(&id),
        Err(e) => status::registry_error(&e),
    }
}

/// Makes the previous version live.
pub async fn rollback(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.registry.rollback(&id).await {
        Ok(version) => status::json(200, json!({ "id": id, "version": version })),
        Err(e) => status::registry_error(&e),
    }
}

/// `GET /_admin/nodes`: the live nodes of the cluster (this node alone on the embedded store).
pub async fn nodes(State(state): State<AppState>) -> Response {
    let me = state.node.record();
    let nodes = match state.registry.store().postgres() {
        None => vec![me.clone()],
        Some(pg) => match pg.nodes(crate::node::LIVE_WITHIN).await {
            Ok(mut nodes) => {
                // This node is live even before its first heartbeat lands.
                if !nodes.iter().any(|n| n.id == me.id) {
                    nodes.push(me.clone());
                }
                nodes
            }
            Err(e) => return status::store_error(&e),
        },
    };
    let nodes: Vec<serde_json::Value> = nodes
        .into_iter()
        .map(|n| {
            let mine = n.id == me.id;
            let mut v = serde_json::to_value(n).unwrap_or_default();
            v["self"] = json!(mine);
            v
        })
        .collect();
    status::json(200, json!({ "nodes": nodes }))
}
