//! The built-in `capnweb` module's sessions, on the runtime's Rust capnweb core (not a second
//! JavaScript implementation): `newWebSocketRpcSession(ws)` and the WebSocket half of
//! `newWorkersRpcResponse` run a [`capnweb::Session`] whose transport is a `WebSocket` of the
//! function (messages its listeners receive are fed in; frames the session sends are sent on
//! it, on the isolate's thread), and the HTTP batch half answers a request body with
//! [`capnweb::transport::batch::serve_batch`].
//!
//! A session lives until its socket closes (or the isolate goes). Its limits are capnweb's
//! defaults, and every session of every function shares one buffer budget.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use capnweb::{Frame, Session, Stub, Transport};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::state::Shared;

/// The limits of sessions run from inside functions (clones share one buffer budget).
fn limits() -> capnweb::Limits {
    static LIMITS: OnceLock<capnweb::Limits> = OnceLock::new();
    LIMITS.get_or_init(capnweb::Limits::default).clone()
}

/// One session over a function's WebSocket.
pub(crate) struct SocketSession {
    /// Kept for its lifetime: the session ends when this (and its feed) is dropped.
    _session: Session,
    feed: mpsc::UnboundedSender<String>,
}

/// The sessions of one isolate, by id (lives on its thread, in the host).
#[derive(Default)]
pub(crate) struct Sessions(HashMap<u64, SocketSession>);

impl Sessions {
    /// Starts session `id` offering `main` (if any); returns the peer's main object. Frames
    /// the session sends are handed to the isolate one job each (`Host::rpc_out`).
    pub(crate) fn start(&mut self, shared: &Arc<Shared>, id: u64, main: Option<Stub>) -> Stub {
        let (feed, incoming) = mpsc::unbounded_channel::<String>();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Frame>();
        let incoming = futures::stream::unfold(incoming, |mut rx| async move {
            rx.recv().await.map(|m| (Ok(m), rx))
        })
        .boxed();
        let session = Session::new(Transport::new(incoming, out_tx), main, limits());
        let remote = session.remote_main();
        let weak = Arc::downgrade(shared);
        drop(capnweb::rt::handle().spawn(async move {
            while let Some(frame) = out_rx.recv().await {
                let Some(shared) = weak.upgrade() else { return };
                shared.post(move |ctx, host| host.rpc_out(ctx, id, frame));
            }
        }));
        self.0.insert(
            id,
            SocketSession {
                _session: session,
                feed,
            },
        );
        remote
    }

    /// A message the session's socket received.
    pub(crate) fn feed(&self, id: u64, text: String) {
        if let Some(s) = self.0.get(&id) {
            let _ = s.feed.send(text);
        }
    }

    /// Ends session `id` (its socket closed).
    pub(crate) fn end(&mut self, id: u64) {
        self.0.remove(&id);
    }

    /// Ends every session.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

/// Answers one HTTP batch body with `main` as the main object.
pub(crate) async fn batch(body: String, main: Stub) -> String {
    capnweb::transport::batch::serve_batch(&body, main, limits()).await
}
