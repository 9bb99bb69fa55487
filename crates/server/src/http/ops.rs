//! `/_health` and `/_metrics`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /_health`: `200 {"status":"ok"}` while the server is serving.
pub async fn health() -> Response {
    super::status::json(200, serde_json::json!({ "status": "ok" }))
}

/// `GET /_metrics`: Prometheus text format (see [`crate::metrics`]).
pub async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}
