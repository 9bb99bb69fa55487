//! WebSockets a function accepts on its own URL: a WebSocket upgrade to `/<id>/<path>` goes
//! to the function's `fetch` with its `Upgrade` and `Connection` headers; when `fetch` answers
//! `new Response(null, { status: 101, webSocket: client })`, the connection is upgraded (with
//! the `Sec-WebSocket-Protocol` the function chose) and bridged to the server's end of the
//! pair ([`isolate::Socket`]).
//!
//! | case | close code |
//! |---|---|
//! | a message larger than `--ws-max-message-bytes` | 1009 |
//! | the function queued more than `--ws-max-outbound-mb` for a peer that does not read | 1008 |
//! | the function's isolate was discarded (a broken limit) | 1011, with the reason |
//! | the server shuts down, or nothing was sent either way for `--rpc-idle-timeout` | 1001 |
//! | over `--rpc-max-sessions-per-function` / `-per-address` (sockets count as sessions) | 1013 |
//!
//! Reading pauses while `--ws-max-inbound-messages` messages or `--ws-max-inbound-mb` wait
//! for the isolate, so a peer that sends faster than the function handles is pushed back by
//! TCP, not buffered.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use capnweb::{Refusal, RequestValue};
use futures::{SinkExt, StreamExt};
use isolate::{Socket, SocketFrame, SocketMessage};
use tokio::sync::Notify;

use super::{status, AppState};
use crate::host::Function;

/// How long a closing side waits for the peer's close reply.
const CLOSE_REPLY: Duration = Duration::from_secs(1);

/// A WebSocket upgrade request (`None` for any other request), and the peer's address.
#[derive(Debug)]
pub struct Upgrade {
    /// The upgrade, if the request is one.
    pub ws: Option<WebSocketUpgrade>,
    /// The TCP peer (present when the server runs with connect info, as it always does).
    pub peer: Option<SocketAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let wants = parts
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let ws = if wants {
            WebSocketUpgrade::from_request_parts(parts, state)
                .await
                .ok()
        } else {
            None
        };
        Ok(Upgrade { ws, peer })
    }
}

/// The sockets open now, so that shutdown can wait for their close frames to go out.
#[derive(Debug, Default)]
pub struct OpenSockets {
    count: AtomicUsize,
    changed: Notify,
}

impl OpenSockets {
    /// How many are open.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until none is open, for at most `limit`.
    pub async fn drained(&self, limit: Duration) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if self.count() == 0 {
                    return;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

/// Counts one open socket until dropped.
struct Counted(Arc<OpenSockets>);

impl Counted {
    fn new(open: &Arc<OpenSockets>) -> Counted {
        open.count.fetch_add(1, Ordering::SeqCst);
        Counted(open.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// Answers a WebSocket upgrade to a function's own URL.
pub async fn answer(
    state: &AppState,
    function: Arc<Function>,
    ws: WebSocketUpgrade,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    mut request: RequestValue,
) -> Response {
    // The function sees the request as it came: Upgrade and Connection included.
    for name in [header::UPGRADE, header::CONNECTION] {
        for v in headers.get_all(&name) {
            request.headers.push((
                name.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
        }
    }
    let limits = isolate::socket_limits();
    let ws = ws
        .read_buffer_size(capnweb::transport::websocket::READ_BUFFER_SIZE)
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes);
    let ticket = match super::rpc::admit(state, &function.id, peer, headers, &state.rpc_limits) {
        Ok(t) => t,
        Err(reason) => return super::rpc::refuse_upgrade(ws, reason),
    };
    let (response, socket) = match state
        .registry
        .host()
        .fetch_socket(function.clone(), request)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let error = state.redact.scrub(headers, &e.to_string());
            tracing::warn!(function = %function.id, %error, "fetch failed");
            return status::host_error(&e);
        }
    };
    let Some(socket) = socket else {
        // The function answered the upgrade with plain HTTP (a refusal, a redirect).
        return super::convert::response(response);
    };
    let protocol = response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
        .map(|(_, v)| v.clone());
    let ws = match protocol {
        Some(p) => ws.protocols([p]),
        None => ws,
    };
    let idle = state.rpc_limits.idle_timeout;
    let shutdown = state.shutdown.clone();
    let counted = Counted::new(&state.sockets);
    let id = function.id.clone();
    let mut out = ws.on_upgrade(move |conn| async move {
        pump(conn, socket, idle, shutdown).await;
        tracing::debug!(function = %id, "websocket closed");
        drop(ticket);
        drop(counted);
        drop(function);
    });
    let out_headers = out.headers_mut();
    for (k, v) in response.headers {
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("sec-websocket-")
            || matches!(
                lower.as_str(),
                "connection" | "upgrade" | "content-length" | "transfer-encoding"
            )
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            out_headers.append(name, value);
        }
    }
    out
}

/// How the bridge ended.
enum End {
    /// The peer sent a close frame.
    PeerClosed(u16, String),
    /// We sent a close frame.
    Closed(u16, String),
    /// The connection broke without a close.
    Broken,
}

fn close_message(code: u16, reason: &str) -> Message {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..cut].into(),
    }))
}

/// Whether an axum WebSocket error is a message over the cap.
fn too_large(e: axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    matches!(
        e.into_inner().downcast_ref::<Error>(),
        Some(Error::Capacity(CapacityError::MessageTooLong { .. }))
    )
}

/// Moves messages between the connection and the function until either side closes.
async fn pump(
    conn: WebSocket,
    mut socket: Socket,
    idle: Option<Duration>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Some(mut outgoing) = socket.outgoing() else {
        return;
    };
    let max = socket.limits().max_message_bytes;
    let (mut sink, mut stream) = conn.split();
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let touch = || {
        let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(now, Ordering::Relaxed);
    };
    let socket = &socket;
    let end = {
        let reader = async {
            while let Some(item) = stream.next().await {
                touch();
                match item {
                    Ok(Message::Text(t)) => {
                        socket
                            .deliver(SocketMessage::Text(t.as_str().to_owned()))
                            .await
                    }
                    Ok(Message::Binary(b)) => {
                        socket.deliver(SocketMessage::Binary(b.to_vec())).await
                    }
                    Ok(Message::Close(frame)) => {
                        let (code, reason) = frame
                            .map(|f| (f.code, f.reason.as_str().to_owned()))
                            .unwrap_or((1005, String::new()));
                        return Err(End::PeerClosed(code, reason));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if too_large(e) {
                            return Ok((1009, format!("message larger than {max} bytes")));
                        }
                        return Err(End::Broken);
                    }
                }
            }
            Err(End::Broken)
        };
        let writer = async {
            loop {
                let idle_left = idle.map(|limit| {
                    let since = Duration::from_millis(last.load(Ordering::Relaxed));
                    (since + limit).saturating_sub(start.elapsed())
                });
                tokio::select! {
                    frame = outgoing.next_frame() => match frame {
                        Some(SocketFrame::Message(m)) => {
                            touch();
                            let msg = match m {
                                SocketMessage::Text(t) => Message::Text(t.into()),
                                SocketMessage::Binary(b) => Message::Binary(b.into()),
                            };
                            if sink.send(msg).await.is_err() {
                                return Err(End::Broken);
                            }
                        }
                        Some(SocketFrame::Close { code, reason }) => return Ok((code, reason)),
                        None => return Ok((1011, socket.gone_reason())),
                    },
                    () = sleep_opt(idle_left) => {
                        let quiet = Duration::from_millis(last.load(Ordering::Relaxed));
                        if let Some(limit) = idle {
                            if start.elapsed() >= quiet + limit {
                                return Ok((
                                    Refusal::Idle.close_code(),
                                    format!("idle for {} s", limit.as_secs()),
                                ));
                            }
                        }
                    }
                    () = stopping(&mut shutdown) => {
                        return Ok((1001, "server shutting down".to_owned()));
                    }
                }
            }
        };
        tokio::select! {
            r = reader => r,
            w = writer => w,
        }
    };
    let end = match end {
        Ok((code, reason)) => {
            let _ = sink.send(close_message(code, &reason)).await;
            End::Closed(code, reason)
        }
        Err(e) => e,
    };
    drop(outgoing);
    match end {
        End::PeerClosed(code, reason) => {
            // The WebSocket layer queued the close reply when it read the peer's close; this
            // sends it.
            let _ = sink.close().await;
            close_socket(socket, code, reason);
        }
        End::Closed(code, reason) => {
            // The peer's reply carries its own code (what the function's close event sees).
            // Until then the connection stays open: a peer still sending (the message that was
            // too large) would otherwise get a reset and lose the close frame.
            let reply = tokio::time::timeout(CLOSE_REPLY, async {
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(Message::Close(frame)) => {
                            return frame.map(|f| (f.code, f.reason.as_str().to_owned()))
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                // The read side ended (after a read error it may): hold the connection anyway.
                std::future::pending::<Option<(u16, String)>>().await
            })
            .await
            .ok()
            .flatten();
            let (code, reason) = reply.unwrap_or((code, reason));
            close_socket(socket, code, reason);
        }
        End::Broken => close_socket(socket, 1006, String::new()),
    }
}

/// The function hears the close: its close listeners run with the code and reason.
fn close_socket(socket: &Socket, code: u16, reason: String) {
    socket.finish(code, reason);
}

/// Resolves once the server starts shutting down (never, if it cannot tell).
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let told = shutdown.wait_for(|stop| *stop).await.is_ok();
    if !told {
        std::future::pending::<()>().await;
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
