//! Transports: how a [`Session`](crate::Session)'s messages travel. An in-memory pair (for
//! tests and for linking two sessions in one process), WebSocket, and HTTP batch.

pub mod batch;
pub mod websocket;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::session::{Frame, Transport};

/// Two transports joined back to back: what one sends, the other receives.
pub fn memory_pair() -> (Transport, Transport) {
    let (a_tx, a_rx) = mpsc::unbounded_channel();
    let (b_tx, b_rx) = mpsc::unbounded_channel();
    (
        Transport::new(frames_to_incoming(b_rx), a_tx),
        Transport::new(frames_to_incoming(a_rx), b_tx),
    )
}

/// Turns the frames one side sends into the messages the other side receives; a close frame
/// ends the stream.
fn frames_to_incoming(
    rx: mpsc::UnboundedReceiver<Frame>,
) -> futures::stream::BoxStream<'static, Result<String, crate::TransportError>> {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Frame::Text(t)) => Some((Ok(t), Some(rx))),
            Some(Frame::Close { .. }) | None => None,
        }
    })
    .boxed()
}
