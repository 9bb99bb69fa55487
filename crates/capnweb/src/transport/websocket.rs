//! capnweb over WebSocket: one text message per capnweb message, as the JavaScript
//! `newWebSocketRpcSession` does. Client ([`connect`]) and server ([`serve_socket`] for a
//! tokio-tungstenite stream, [`serve_axum`] for an axum upgrade).

use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::codec::Limits;
use crate::session::{Frame, Session, Transport};
use crate::{rt, Stub, TransportError};

/// The read buffer size our WebSockets use. tungstenite zero-fills its whole read buffer
/// before every read, so its 128 KiB default costs a 128 KiB `memset` per message received
/// (a tenth of a small call's CPU); 16 KiB keeps that small and large messages still take few
/// reads. Servers built on axum pass it to `WebSocketUpgrade::read_buffer_size`.
pub const READ_BUFFER_SIZE: usize = 16 * 1024;

/// The tungstenite configuration [`connect`] uses: the defaults with [`READ_BUFFER_SIZE`].
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER_SIZE)
}

/// The close code the JavaScript implementation uses when a session aborts.
const ABORT_CLOSE_CODE: u16 = 3000;

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

/// Builds a transport from any WebSocket's two halves: `text` and `close` make outgoing
/// messages, `classify` reads incoming ones.
fn websocket_transport<M, E, Si, St>(
    mut sink: Si,
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
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    rt::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let mut next = Some(frame);
            // Feed everything already queued, then flush once.
            while let Some(f) = next.take() {
                match f {
                    Frame::Text(t) => {
                        if sink.feed(text(t)).await.is_err() {
                            return;
                        }
                    }
                    Frame::Close(reason) => {
                        let _ = sink
                            .send(close(ABORT_CLOSE_CODE, close_reason(&reason)))
                            .await;
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
    });
    let incoming = futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        while let Some(item) = stream.next().await {
            match classify(item) {
                Received::Text(t) => return Some((Ok(t), Some(stream))),
                Received::Closed => return None,
                Received::Ignore => {}
                Received::Failed(e) => return Some((Err(e), None)),
            }
        }
        None
    })
    .boxed();
    Transport::new(incoming, tx)
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
            Err(e) => Received::Failed(TransportError::WebSocket(e)),
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
            Err(e) => Received::Failed(TransportError::Http(e.to_string())),
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
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config()), true).await?;
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
