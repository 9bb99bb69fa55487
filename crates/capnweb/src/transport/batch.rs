//! capnweb over HTTP batch: one POST carries every message a client has, newline-separated,
//! and the response carries every answer. One batch is one round trip.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use tokio::sync::{mpsc, oneshot};

use crate::limits::{Limits, Refusal};
use crate::session::{Frame, Outbound, Session, Transport};
use crate::{Stub, TransportError};

/// What a batch session answered.
#[derive(Debug)]
pub struct BatchAnswer {
    /// The response body: every message the session sent, newline-separated.
    pub body: String,
    /// How the session said no, if it did: [`Refusal::Overloaded`] should be answered with 503
    /// and `Retry-After` instead of the body; [`Refusal::Aborted`] is in the body as an `abort`
    /// line (status 200, as the JavaScript server would send it).
    pub refusal: Option<Refusal>,
}

/// Answers one HTTP batch request body with `main` as the main object; returns the response
/// body. (The HTTP side — method check, status — is the caller's.)
pub async fn serve_batch(body: &str, main: Stub, limits: Limits) -> String {
    answer_batch(body, main, limits).await.body
}

/// Like [`serve_batch`], and says how the session refused, if it did.
pub async fn answer_batch(body: &str, main: Stub, limits: Limits) -> BatchAnswer {
    let lines: Vec<String> = if body.is_empty() {
        Vec::new()
    } else {
        body.split('\n').map(str::to_owned).collect()
    };
    let (all_received_tx, all_received_rx) = oneshot::channel::<()>();
    let mut signal = Some(all_received_tx);
    let tail = futures::stream::poll_fn(move |_| {
        if let Some(tx) = signal.take() {
            let _ = tx.send(());
        }
        Poll::<Option<Result<String, TransportError>>>::Pending
    });
    let incoming = futures::stream::iter(lines.into_iter().map(Ok))
        .chain(tail)
        .boxed();
    // The answers are held until the response is built, charged to the session's buffer
    // budget: a batch that makes more than that (pipelined echoes of one large value, say) is
    // aborted instead of growing the response without bound.
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    let session = Session::new(Transport::collected(incoming, tx), Some(main), limits);
    let _ = all_received_rx.await;
    session.drain().await;
    let mut out: Vec<String> = Vec::new();
    let mut held = Vec::new();
    while let Ok(Outbound(frame, charge)) = rx.try_recv() {
        if let Frame::Text(t) = frame {
            out.push(t);
        }
        held.push(charge);
    }
    let refusal = session.refusal();
    session.abort(crate::RpcError::error("Batch RPC request ended."));
    BatchAnswer {
        body: out.join("\n"),
        refusal,
    }
}

/// An HTTP batch client session: calls made before [`HttpBatch::run`] polls go out in one POST.
pub struct HttpBatch {
    session: Session,
    url: String,
    outgoing: mpsc::UnboundedReceiver<Frame>,
    incoming: mpsc::UnboundedSender<Result<String, TransportError>>,
}

impl std::fmt::Debug for HttpBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBatch").field("url", &self.url).finish()
    }
}

impl HttpBatch {
    /// A batch aimed at `url` (for example `http://127.0.0.1:8787/batch`).
    pub fn new(url: impl Into<String>, limits: Limits) -> HttpBatch {
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let incoming =
            futures::stream::unfold(
                in_rx,
                |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
            )
            .boxed();
        let session = Session::new(Transport::new(incoming, out_tx), None, limits);
        HttpBatch {
            session,
            url: url.into(),
            outgoing: out_rx,
            incoming: in_tx,
        }
    }

    /// The server's main object.
    pub fn main(&self) -> Stub {
        self.session.remote_main()
    }

    /// The session (for stats and frame counts).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Polls `work` once (so the results it awaits are requested), sends everything queued as
    /// one POST, delivers the answers, and finishes `work`.
    pub async fn run<F: Future>(mut self, work: F) -> Result<F::Output, TransportError> {
        let mut work = pin!(work);
        if let Poll::Ready(out) = futures::poll!(work.as_mut()) {
            return Ok(out);
        }
        let mut lines = Vec::new();
        while let Ok(frame) = self.outgoing.try_recv() {
            if let Frame::Text(t) = frame {
                lines.push(t);
            }
        }
        let body = post(&self.url, lines.join("\n")).await?;
        if !body.is_empty() {
            for line in body.split('\n') {
                let _ = self.incoming.send(Ok(line.to_owned()));
            }
        }
        drop(self.incoming);
        Ok(work.await)
    }
}

async fn post(url: &str, body: String) -> Result<String, TransportError> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| TransportError::Http(format!("bad URL {url}: {e}")))?;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::post(uri)
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| TransportError::Http(e.to_string()))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| TransportError::Http(e.to_string()))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| TransportError::Http(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(TransportError::Http(format!(
            "RPC request failed: {status}"
        )));
    }
    String::from_utf8(bytes.to_vec())
        .map_err(|_| TransportError::Http("response is not UTF-8".into()))
}
