//! capnweb over WebSocket: one text message per capnweb message, as the JavaScript
//! `newWebSocketRpcSession` does. Client ([`connect`]) and server ([`serve_socket`] for a
//! tokio-tungstenite stream, [`serve_axum`] for an axum upgrade).
//!
//! The message and frame caps come from the session's [`Limits`]
//! ([`Limits::max_frame_bytes`]), so the WebSocket never refuses a message the session would
//! accept; a larger frame closes the connection with 1009 and a reason. Frames queued for the
//! peer are charged to the session's buffer budget until they are written.

use std::sync::Arc;

use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::limits::Limits;
use crate::session::{Frame, Outbound, Session, Transport};
use crate::{rt, Stub, TransportError};

/// The read buffer size our WebSockets use. tungstenite zero-fills its whole read buffer
/// before every read, so its 128 KiB default costs a 128 KiB `memset` per message received
/// (a tenth of a small call's CPU); 16 KiB keeps that small and large messages still take few
/// reads. Servers built on axum pass it to `WebSocketUpgrade::read_buffer_size`.
pub const READ_BUFFER_SIZE: usize = 16 * 1024;

/// The tungstenite configuration for a session with `limits`: [`READ_BUFFER_SIZE`], and
/// message and frame caps of [`Limits::max_frame_bytes`].
pub fn config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .max_message_size(Some(limits.max_frame_bytes()))
        .max_frame_size(Some(limits.max_frame_bytes()))
}

/// Prepares an axum upgrade for a session with `limits`: the read buffer size and the
/// message and frame caps that [`config`] sets.
pub fn axum_upgrade(
    ws: axum::extract::ws::WebSocketUpgrade,
    limits: &Limits,
) -> axum::extract::ws::WebSocketUpgrade {
    ws.read_buffer_size(READ_BUFFER_SIZE)
        .max_message_size(limits.max_frame_bytes())
        .max_frame_size(limits.max_frame_bytes())
}

/// Whether a tungstenite error is a frame or message over the cap, and its sizes.
fn too_large(e: &tokio_tungstenite::tungstenite::Error) -> Option<(usize, usize)> {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    match e {
        Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Some((*size, *max_size))
        }
        _ => None,
    }
}

/// A WebSocket close reason may hold at most 123 bytes.
fn close_reason(reason: &str) -> String {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    reason[..cut].to_owned()
}

/// What one received WebSocket message means to a session.
enum Received {
    Text(String),
    Closed,
    Ignore,
    Failed(TransportError),
}

/// Writes `frames` to `sink` until a close frame or the channel's end; each frame's charge is
/// released once the frame is handed to the socket.
async fn write_frames<M, Si>(
    mut sink: Si,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    text: fn(String) -> M,
    close: fn(u16, String) -> M,
) where
    Si: Sink<M> + Unpin,
{
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Feed everything already queued, then flush once.
        while let Some(Outbound(f, charge)) = next.take() {
            match f {
                Frame::Text(t) => {
                    if sink.feed(text(t)).await.is_err() {
                        return;
                    }
                    drop(charge);
                }
                Frame::Close { code, reason } => {
                    let _ = sink.send(close(code, close_reason(&reason))).await;
                    return;
                }
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// Builds a transport from any WebSocket's two halves: `text` and `close` make outgoing
/// messages, `classify` reads incoming ones.
fn websocket_transport<M, E, Si, St>(
    sink: Si,
    stream: St,
    text: fn(String) -> M,
    close: fn(u16, String) -> M,
    classify: fn(Result<M, E>) -> Received,
) -> Transport
where
    M: Send + 'static,
    E: Send + 'static,
    Si: Sink<M> + Unpin + Send + 'static,
    St: Stream<Item = Result<M, E>> + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Outbound>();
    let kill = Arc::new(Notify::new());
    let killed = kill.clone();
    rt::spawn(async move {
        // Stopped by `kill` (a peer that never reads would hold the writer forever): what is
        // still queued is dropped, and with it its charges.
        tokio::select! {
            () = write_frames(sink, rx, text, close) => {}
            () = killed.notified() => {}
        }
    });
    let incoming = futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        while let Some(item) = stream.next().await {
            match classify(item) {
                Received::Text(t) => return Some((Ok(t), Some(stream))),
                Received::Closed => return None,
                Received::Ignore => {}
                // A frame too large leaves the connection open (the session holds it for a
                // moment so the peer can read the close); other failures end it here.
                Received::Failed(e @ TransportError::FrameTooLarge { .. }) => {
                    return Some((Err(e), Some(stream)))
                }
                Received::Failed(e) => return Some((Err(e), None)),
            }
        }
        None
    })
    .boxed();
    Transport::charged(incoming, tx, kill)
}

fn binary_text(bytes: &[u8]) -> Received {
    match String::from_utf8(bytes.to_vec()) {
        Ok(t) => Received::Text(t),
        Err(_) => Received::Failed(TransportError::Http(
            "binary WebSocket message is not UTF-8".into(),
        )),
    }
}

/// Wraps an open tokio-tungstenite WebSocket as a transport.
pub fn transport<S>(ws: WebSocketStream<S>) -> Transport
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    websocket_transport(
        sink,
        stream,
        |t| Message::Text(t.into()),
        |code, reason| {
            Message::Close(Some(CloseFrame {
                code: CloseCode::Library(code),
                reason: reason.into(),
            }))
        },
        |item| match item {
            Ok(Message::Text(t)) => Received::Text(t.as_str().to_owned()),
            Ok(Message::Binary(b)) => binary_text(&b),
            Ok(Message::Close(_)) => Received::Closed,
            Ok(_) => Received::Ignore,
            Err(e) => match too_large(&e) {
                Some((size, max)) => Received::Failed(TransportError::FrameTooLarge { size, max }),
                None => Received::Failed(TransportError::WebSocket(e)),
            },
        },
    )
}

/// Wraps an axum WebSocket as a transport.
pub fn axum_transport(ws: axum::extract::ws::WebSocket) -> Transport {
    use axum::extract::ws::{CloseFrame as AxClose, Message as AxMessage};
    let (sink, stream) = ws.split();
    websocket_transport(
        sink,
        stream,
        |t| AxMessage::Text(t.into()),
        |code, reason| {
            AxMessage::Close(Some(AxClose {
                code,
                reason: reason.into(),
            }))
        },
        |item| match item {
            Ok(AxMessage::Text(t)) => Received::Text(t.as_str().to_owned()),
            Ok(AxMessage::Binary(b)) => binary_text(&b),
            Ok(AxMessage::Close(_)) => Received::Closed,
            Ok(_) => Received::Ignore,
            Err(e) => {
                let inner = e.into_inner();
                match inner
                    .downcast_ref::<tokio_tungstenite::tungstenite::Error>()
                    .and_then(too_large)
                {
                    Some((size, max)) => {
                        Received::Failed(TransportError::FrameTooLarge { size, max })
                    }
                    None => Received::Failed(TransportError::Http(inner.to_string())),
                }
            }
        },
    )
}

/// Connects to a capnweb WebSocket server and returns the session (whose
/// [`remote_main`](Session::remote_main) is the server's main object).
pub async fn connect(
    url: &str,
    local_main: Option<Stub>,
    limits: Limits,
) -> Result<Session, TransportError> {
    // TCP_NODELAY, as browsers and Node's `ws` do: with Nagle on, a call that follows a
    // `release` (which the peer never answers) waits for a delayed ACK, ~40 ms.
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(config(&limits)), true).await?;
    Ok(Session::new(transport(ws), local_main, limits))
}

/// Serves one accepted WebSocket connection, offering `main`.
pub fn serve_socket<S>(ws: WebSocketStream<S>, main: Stub, limits: Limits) -> Session
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Session::new(transport(ws), Some(main), limits)
}

/// Serves an upgraded axum WebSocket, offering `main`; returns when the session ends.
pub async fn serve_axum(ws: axum::extract::ws::WebSocket, main: Stub, limits: Limits) {
    let session = Session::new(axum_transport(ws), Some(main), limits);
    session.closed().await;
}
