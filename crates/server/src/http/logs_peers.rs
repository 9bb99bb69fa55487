//! `functions logs ID` across a cluster: the node asked fans out to the logs endpoint of every
//! other live node and merges their lines into its own stream.
//!
//! On a shared store, `GET /_admin/functions/<id>/logs` (without `?local=1`) starts a
//! [`follow`] task beside the local subscription. Every [`crate::node::HEARTBEAT_EVERY`] it
//! reads the live nodes from the registry and opens `GET <address>/_admin/functions/<id>/logs?local=1`
//! on each it does not follow yet, with the caller's own `Authorization` (one admin token per
//! cluster); a peer stream that ends or fails is opened again on a later round if the node
//! is still live. Lines travel node to node, never through PostgreSQL (NOTIFY payloads cap at
//! 8 KB). Each merged line names its node (`node`); lines are merged in arrival order.
//!
//! Bounds: one channel of [`PEER_BUFFER`] lines shared by all peers (a peer that cannot send
//! waits, and its node drops lines for it as for any slow reader, with a `dropped` marker);
//! a line longer than [`MAX_LINE`] bytes ends that peer's stream. Everything ends when the
//! client goes away or the server shuts down.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderValue;
use bytes::{Buf, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::logs::LogLine;
use crate::node::{Node, HEARTBEAT_EVERY, LIVE_WITHIN};

/// Lines from peers waiting to be written to the client.
pub const PEER_BUFFER: usize = 1024;

/// The longest line accepted from a peer, in bytes.
pub const MAX_LINE: usize = 1024 * 1024;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<bytes::Bytes>>;

/// Follows function `id`'s logs on every other live node, sending their lines to `tx`, until
/// `tx` is closed or `shutdown` turns true.
pub async fn follow(
    pg: store::postgres::PgBackend,
    me: Arc<Node>,
    id: String,
    auth: Option<HeaderValue>,
    tx: mpsc::Sender<LogLine>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut peers: JoinSet<()> = JoinSet::new();
    let mut following: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tx.closed() => break,
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        following.retain(|_, task| !task.is_finished());
        while peers.try_join_next().is_some() {}
        let nodes = match pg.nodes(LIVE_WITHIN).await {
            Ok(nodes) => nodes,
            Err(e) => {
                tracing::debug!("logs of {id}: cannot list the nodes: {e}");
                continue;
            }
        };
        for node in nodes {
            if node.id == me.id() || following.contains_key(&node.id) {
                continue;
            }
            let task = peers.spawn(peer(
                client.clone(),
                node.address.clone(),
                node.id.clone(),
                id.clone(),
                auth.clone(),
                tx.clone(),
            ));
            following.insert(node.id, task);
        }
    }
    // Dropping the set aborts the peer streams.
}

/// One peer's stream: its lines, tagged with its node id, into `tx`.
async fn peer(
    client: HttpClient,
    address: String,
    node_id: String,
    id: String,
    auth: Option<HeaderValue>,
    tx: mpsc::Sender<LogLine>,
) {
    let url = format!("{address}/_admin/functions/{id}/logs?local=1");
    let mut req = hyper::Request::get(&url);
    if let Some(auth) = auth {
        req = req.header(hyper::header::AUTHORIZATION, auth);
    }
    let Ok(req) = req.body(Empty::new()) else {
        tracing::debug!("logs of {id}: bad peer address {address:?}");
        return;
    };
    let resp = tokio::select! {
        r = client.request(req) => r,
        _ = tx.closed() => return,
    };
    let resp = match resp {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            tracing::debug!("logs of {id}: node {node_id} answered {}", r.status());
            return;
        }
        Err(e) => {
            tracing::debug!("logs of {id}: cannot reach node {node_id} at {address}: {e}");
            return;
        }
    };
    let mut body = resp.into_body();
    let mut buf = BytesMut::new();
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = tx.closed() => return,
        };
        let Some(Ok(frame)) = frame else { return };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line = buf.split_to(end);
            buf.advance(1);
            if line.is_empty() {
                continue; // heartbeat
            }
            let Ok(mut line) = serde_json::from_slice::<LogLine>(&line) else {
                tracing::debug!("logs of {id}: node {node_id} sent a line that is not a log line");
                return;
            };
            line.node = Some(node_id.clone());
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if buf.len() > MAX_LINE {
            tracing::debug!("logs of {id}: node {node_id} sent a line over {MAX_LINE} bytes");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server on loopback answering 200 with `body` (not chunked, no length:
    /// the body ends when the connection closes). Returns its URL.
    async fn serve_once(body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 4096];
            let _ = tcp.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n";
            let _ = tcp.write_all(head.as_bytes()).await;
            let _ = tcp.write_all(&body).await;
            let _ = tcp.shutdown().await;
        });
        format!("http://{addr}")
    }

    fn client() -> HttpClient {
        Client::builder(TokioExecutor::new()).build_http()
    }

    #[tokio::test]
    async fn a_peers_lines_arrive_tagged_with_its_node() {
        let line = br#"{"function":"f","level":"info","message":"hi","timestamp_ms":1}"#;
        let mut body = b"\n".to_vec(); // a heartbeat first
        body.extend_from_slice(line);
        body.push(b'\n');
        let url = serve_once(body).await;
        let (tx, mut rx) = mpsc::channel(8);
        peer(client(), url, "n2".into(), "f".into(), None, tx).await;
        let got = rx.recv().await.expect("a line");
        assert_eq!(got.message, "hi");
        assert_eq!(got.node.as_deref(), Some("n2"));
        assert!(
            rx.recv().await.is_none(),
            "the stream ended with the peer's"
        );
    }

    #[tokio::test]
    async fn a_line_longer_than_the_bound_ends_that_peers_stream() {
        // A well-formed log line whose message is 2 MiB: dropped, and the peer with it.
        let big = format!(
            "{{\"function\":\"f\",\"level\":\"info\",\"message\":\"{}\",\"timestamp_ms\":1}}\n",
            "x".repeat(2 * MAX_LINE)
        );
        let body = big.into_bytes();
        let url = serve_once(body).await;
        let (tx, mut rx) = mpsc::channel(8);
        peer(client(), url, "n2".into(), "f".into(), None, tx).await;
        assert!(
            rx.recv().await.is_none(),
            "nothing from a peer past the line bound"
        );
    }
}
