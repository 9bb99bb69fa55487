//! capnweb over WebSocket: one text message per capnweb message, as the JavaScript
//! `newWebSocketRpcSession` does. Client ([`connect`]) and server ([`serve_socket`] for a
//! tokio-tungstenite stream, [`serve_axum`] for an axum upgrade).

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::codec::Limits;
use crate::session::{Frame, Session, Transport};
use crate::{rt, Stub, TransportError};

/// A WebSocket close reason may hold at most 123 bytes.
fn close_reason(reason: &str) -> String {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    reason[..cut].to_owned()
}

/// Wraps an open tokio-tungstenite WebSocket as a transport.
pub fn transport<S>(ws: WebSocketStream<S>) -> Transport
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    rt::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let mut next = Some(frame);
            // Feed everything already queued, then flush once.
            while let Some(f) = next.take() {
                match f {
                    Frame::Text(t) => {
                        if sink.feed(Message::Text(t.into())).await.is_err() {
                            return;
                        }
                    }
                    Frame::Close(reason) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code: CloseCode::Library(3000),
                                reason: close_reason(&reason).into(),
                            })))
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
    let incoming = futures::stream::unfold(Some(stream), |stream| async move {
        let mut stream = stream?;
        loop {
            return match stream.next().await {
                Some(Ok(Message::Text(t))) => Some((Ok(t.as_str().to_owned()), Some(stream))),
                Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                    Ok(t) => Some((Ok(t), Some(stream))),
                    Err(_) => Some((
                        Err(TransportError::Http(
                            "binary WebSocket message is not UTF-8".into(),
                        )),
                        None,
                    )),
                },
                Some(Ok(Message::Close(_))) | None => None,
                Some(Ok(_)) => continue,
                Some(Err(e)) => Some((Err(TransportError::WebSocket(e)), None)),
            };
        }
    })
    .boxed();
    Transport::new(incoming, tx)
}

/// Connects to a capnweb WebSocket server and returns the session (whose
/// [`remote_main`](Session::remote_main) is the server's main object).
pub async fn connect(
    url: &str,
    local_main: Option<Stub>,
    limits: Limits,
) -> Result<Session, TransportError> {
    let (ws, _) = tokio_tungstenite::connect_async(url).await?;
    Ok(Session::new(transport(ws), local_main, limits))
}

/// Serves one accepted WebSocket connection, offering `main`.
pub fn serve_socket<S>(ws: WebSocketStream<S>, main: Stub, limits: Limits) -> Session
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Session::new(transport(ws), Some(main), limits)
}

/// Wraps an axum WebSocket as a transport.
pub fn axum_transport(ws: axum::extract::ws::WebSocket) -> Transport {
    use axum::extract::ws::{CloseFrame as AxClose, Message as AxMessage};
    let (mut sink, stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    rt::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let mut next = Some(frame);
            while let Some(f) = next.take() {
                match f {
                    Frame::Text(t) => {
                        if sink.feed(AxMessage::Text(t.into())).await.is_err() {
                            return;
                        }
                    }
                    Frame::Close(reason) => {
                        let _ = sink
                            .send(AxMessage::Close(Some(AxClose {
                                code: 3000,
                                reason: close_reason(&reason).into(),
                            })))
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
    let incoming = futures::stream::unfold(Some(stream), |stream| async move {
        let mut stream = stream?;
        loop {
            return match stream.next().await {
                Some(Ok(AxMessage::Text(t))) => Some((Ok(t.as_str().to_owned()), Some(stream))),
                Some(Ok(AxMessage::Binary(b))) => match String::from_utf8(b.to_vec()) {
                    Ok(t) => Some((Ok(t), Some(stream))),
                    Err(_) => None,
                },
                Some(Ok(AxMessage::Close(_))) | None => None,
                Some(Ok(_)) => continue,
                Some(Err(e)) => Some((Err(TransportError::Http(e.to_string())), None)),
            };
        }
    })
    .boxed();
    Transport::new(incoming, tx)
}

/// Serves an upgraded axum WebSocket, offering `main`; returns when the session ends.
pub async fn serve_axum(ws: axum::extract::ws::WebSocket, main: Stub, limits: Limits) {
    let session = Session::new(axum_transport(ws), Some(main), limits);
    session.closed().await;
}
