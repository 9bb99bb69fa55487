//! The built-in `capnweb` module's sessions, on the runtime's Rust capnweb core (not a second
//! JavaScript implementation): `newWebSocketRpcSession(ws)` and the WebSocket half of
//! `newWorkersRpcResponse` run a [`capnweb::Session`] whose transport is a `WebSocket` of the
//! function (messages its listeners receive are fed in; frames the session sends are sent on
//! it, on the isolate's thread), and the HTTP batch half answers a request body with
//! [`capnweb::transport::batch::serve_batch`].
//!
//! `newHttpBatchRpcSession(url)` runs a session whose one batch is POSTed through the
//! function's `globalOutbound` ([`batch_client`]): the calls made in the job that made the
//! first one go out together, and the answers come back in the response.
//!
//! A session lives until its socket closes (or the isolate goes). Its limits are the server's
//! `/_rpc` table ([`set_function_rpc_limits`]; capnweb's defaults otherwise), and every session
//! of every function shares its buffer budget.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use capnweb::{Frame, Session, Stub, Transport};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::state::Shared;

static LIMITS: OnceLock<capnweb::Limits> = OnceLock::new();

/// Sets the limits of the capnweb sessions functions run (the `capnweb` module's), once,
/// before the first: the server passes its `/_rpc` table, so that both count against one
/// buffer budget. Returns whether it took effect.
pub fn set_function_rpc_limits(limits: capnweb::Limits) -> bool {
    LIMITS.set(limits).is_ok()
}

/// The limits of sessions run from inside functions (clones share one buffer budget).
fn limits() -> capnweb::Limits {
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

/// A capnweb HTTP batch client whose one request goes through `outbound.fetch` (the function's
/// `globalOutbound`) as a POST to `url` with `headers`. Returns the server's main object. The
/// batch is sent once the isolate's job that made the first call is over (so that every call
/// it made is in it, as capnweb's JavaScript client sends after the current task).
pub(crate) fn batch_client(
    shared: &Arc<Shared>,
    outbound: Stub,
    url: String,
    headers: Vec<(String, String)>,
) -> Stub {
    let (feed, incoming) = mpsc::unbounded_channel::<String>();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Frame>();
    let incoming = futures::stream::unfold(incoming, |mut rx| async move {
        rx.recv().await.map(|m| (Ok(m), rx))
    })
    .boxed();
    let session = Session::new(Transport::new(incoming, out_tx), None, limits());
    let remote = session.remote_main();
    let weak = Arc::downgrade(shared);
    drop(capnweb::rt::handle().spawn(async move {
        let Some(first) = out_rx.recv().await else {
            return;
        };
        // The rest of the job that made the first call queues its calls too.
        if let Some(shared) = weak.upgrade() {
            let (done, turn_over) = tokio::sync::oneshot::channel::<()>();
            shared.post(move |_, _| {
                let _ = done.send(());
            });
            drop(shared);
            let _ = turn_over.await;
        }
        let mut lines = Vec::new();
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            if let Frame::Text(t) = frame {
                lines.push(t);
            }
            next = out_rx.try_recv().ok();
        }
        let request = capnweb::RequestValue {
            url,
            method: "POST".into(),
            headers,
            body: Some(capnweb::Body::Text(lines.join("\n"))),
            extra: Default::default(),
        };
        let answer = outbound
            .call("fetch", vec![capnweb::Value::Request(Box::new(request))])
            .await;
        let body = match answer {
            Ok(capnweb::Value::Response(r)) if r.status == 200 => match r.body {
                None => Ok(String::new()),
                Some(capnweb::Body::Text(t)) => Ok(t),
                Some(capnweb::Body::Bytes(b)) => {
                    String::from_utf8(b).map_err(|_| "not UTF-8".to_owned())
                }
                Some(capnweb::Body::Stream(s)) => match s.read_all().await {
                    Ok(b) => String::from_utf8(b).map_err(|_| "not UTF-8".to_owned()),
                    Err(e) => Err(e.message()),
                },
                Some(_) => Err("the response body is not text".to_owned()),
            },
            Ok(capnweb::Value::Response(r)) => Err(format!("{} {}", r.status, r.status_text)),
            Ok(_) => Err("globalOutbound.fetch() did not return a Response".to_owned()),
            Err(e) => Err(e.message()),
        };
        match body {
            Ok(body) => {
                for line in body.split('\n').filter(|l| !l.is_empty()) {
                    let _ = feed.send(line.to_owned());
                }
            }
            Err(why) => {
                let abort = serde_json::json!([
                    "abort",
                    ["error", "Error", format!("RPC request failed: {why}")]
                ]);
                let _ = feed.send(abort.to_string());
            }
        }
        drop(feed);
        // The answers are read before the end of the stream ends the session.
        session.drain().await;
        drop(session);
    }));
    remote
}
