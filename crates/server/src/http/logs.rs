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
//! On a shared store the stream is the whole cluster's: lines printed on the other live nodes
//! are merged in ([`super::logs_peers`]) and every line names its `node`; `?local=1` asks for
//! this node's lines only (what the nodes ask each other).
//!
//! Admin token required (401); 404 if no function `<id>` is deployed when the stream opens.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use bytes::Bytes;

use super::{status, AppState};
use crate::logs::{self, LogLine, Received, Subscription};

/// How often an idle stream sends an empty line.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// The NDJSON media type.
pub const NDJSON: &str = "application/x-ndjson";

/// The query string of a logs request.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LogsQuery {
    /// `1`: this node's lines only, no fan-out.
    #[serde(default)]
    local: Option<String>,
}

/// Streams the function's console lines.
pub async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
    headers: HeaderMap,
) -> Response {
    match state.registry.info(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return status::not_found(&id),
        Err(e) => return status::registry_error(&e),
    }
    // Subscribe before answering: a line printed after the client has the headers is sent.
    let sub = logs::hub().subscribe(&id);
    let pg = state.registry.store().postgres().cloned();
    let node = pg.as_ref().map(|_| state.node.id().to_owned());
    let peers = match pg {
        Some(pg) if query.local.is_none() => {
            let (tx, rx) = tokio::sync::mpsc::channel(super::logs_peers::PEER_BUFFER);
            tokio::spawn(super::logs_peers::follow(
                pg,
                state.node.clone(),
                id.clone(),
                headers.get(header::AUTHORIZATION).cloned(),
                tx,
                state.shutdown.clone(),
            ));
            Some(rx)
        }
        _ => None,
    };
    let body = futures::stream::unfold(
        StreamState {
            id,
            sub,
            peers,
            node,
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
    /// Lines from the other nodes (a shared store, no `?local=1`).
    peers: Option<tokio::sync::mpsc::Receiver<LogLine>>,
    /// This node's id, on a shared store: written into its own lines.
    node: Option<String>,
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
            Some(Received::Line(line)) => Next::Line(LogLine { node: st.node.clone(), ..line }),
            Some(Received::Dropped(n)) => Next::Line(LogLine {
                node: st.node.clone(),
                ..LogLine::dropped(&st.id, n)
            }),
            None => Next::End,
        },
        Some(line) = async {
            match st.peers.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        } => Next::Line(line),
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
