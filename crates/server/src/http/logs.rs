//! `GET /_admin/functions/<id>/logs`: the function's console output, live, as newline-delimited
//! JSON over a chunked response (`content-type: application/x-ndjson`).
//!
//! Each line is one [`LogLine`] object, written as it happens:
//! `{"function","level","message","timestamp_ms"}`, plus `source` (the sub-id) for code the
//! function loaded with `env.LOADER.get`, and `dropped` (a count) on the marker a slow reader
//! gets instead of the lines it lost. There is no history: the stream starts with the first
//! line printed after the response headers were sent. An empty line is sent every
//! [`HEARTBEAT`] so a gone client is noticed (readers skip empty lines). The stream ends when
//! the client disconnects or the server shuts down.
//!
//! Admin token required (401); 404 if no function `<id>` is deployed when the stream opens.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;

use super::{status, AppState};
use crate::logs::{self, LogLine, Received, Subscription};

/// How often an idle stream sends an empty line.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// The NDJSON media type.
pub const NDJSON: &str = "application/x-ndjson";

/// Streams the function's console lines.
pub async fn stream(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.registry.info(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return status::not_found(&id),
        Err(e) => return status::registry_error(&e),
    }
    // Subscribe before answering: a line printed after the client has the headers is sent.
    let sub = logs::hub().subscribe(&id);
    let body = futures::stream::unfold(
        StreamState {
            id,
            sub,
            shutdown: state.shutdown.clone(),
        },
        next_chunk,
    );
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, NDJSON)
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Body::from_stream(body))
        .unwrap_or_else(|e| status::error(500, "Error", e.to_string()))
}

struct StreamState {
    id: String,
    sub: Subscription,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

async fn next_chunk(
    mut st: StreamState,
) -> Option<(Result<Bytes, std::convert::Infallible>, StreamState)> {
    if *st.shutdown.borrow() {
        return None;
    }
    enum Next {
        Line(LogLine),
        Heartbeat,
        End,
    }
    let next = tokio::select! {
        r = st.sub.recv() => match r {
            Some(Received::Line(line)) => Next::Line(line),
            Some(Received::Dropped(n)) => Next::Line(LogLine::dropped(&st.id, n)),
            None => Next::End,
        },
        _ = tokio::time::sleep(HEARTBEAT) => Next::Heartbeat,
        _ = st.shutdown.wait_for(|stop| *stop) => Next::End,
    };
    let line = match next {
        Next::Line(line) => line,
        Next::Heartbeat => return Some((Ok(Bytes::from_static(b"\n")), st)),
        Next::End => return None,
    };
    let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
    bytes.push(b'\n');
    Some((Ok(Bytes::from(bytes)), st))
}
