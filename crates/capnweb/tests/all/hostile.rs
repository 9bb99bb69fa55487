//! Hostile input: malformed messages abort the session with an error and never panic; other
//! sessions carry on. The decoder's fuzz harness (and its stable-Rust mutation run) is in
//! `fuzz/`.

use std::time::Duration;

use capnweb::{Frame, Limits, Session, Transport};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::api::Api;

/// A server session driven by raw frames: returns what it sends back.
struct Raw {
    to_server: mpsc::UnboundedSender<Result<String, capnweb::TransportError>>,
    from_server: mpsc::UnboundedReceiver<Frame>,
    _session: Session,
}

fn raw_server() -> Raw {
    raw_server_with(Limits::default())
}

fn raw_server_with(limits: Limits) -> Raw {
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let incoming =
        futures::stream::unfold(
            in_rx,
            |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
        )
        .boxed();
    let (main, _) = Api::stub();
    let session = Session::new(Transport::new(incoming, out_tx), Some(main), limits);
    Raw {
        to_server: in_tx,
        from_server: out_rx,
        _session: session,
    }
}

async fn next_text(raw: &mut Raw) -> Option<String> {
    match tokio::time::timeout(Duration::from_secs(5), raw.from_server.recv())
        .await
        .ok()??
    {
        Frame::Text(t) => Some(t),
        _ => None,
    }
}

#[tokio::test]
async fn malformed_messages_abort_the_session_with_an_error() {
    for bad in [
        "not json",
        "[\"push\"]",
        "[\"bogus\",1]",
        "{}",
        "[\"pull\",99]",
        "[\"release\",5,1]",
        "[\"push\",[\"pipeline\",7,[\"x\"],[]]]",
        "[\"push\",[\"bytes\",\"!!\"]]",
    ] {
        let mut raw = raw_server();
        raw.to_server.send(Ok(bad.to_owned())).expect("send");
        let reply = next_text(&mut raw)
            .await
            .unwrap_or_else(|| panic!("{bad}: no abort sent"));
        assert!(
            reply.starts_with("[\"abort\",[\"error\","),
            "{bad}: got {reply}"
        );
    }
}

#[tokio::test]
async fn a_broken_session_does_not_affect_another() {
    let mut bad = raw_server();
    bad.to_server.send(Ok("garbage".into())).expect("send");
    assert!(next_text(&mut bad)
        .await
        .expect("abort")
        .starts_with("[\"abort\""));
    let mut good = raw_server();
    good.to_server
        .send(Ok("[\"push\",[\"pipeline\",0,[\"square\"],[9]]]".into()))
        .expect("push");
    good.to_server
        .send(Ok("[\"pull\",1]".into()))
        .expect("pull");
    assert_eq!(
        next_text(&mut good).await.as_deref(),
        Some("[\"resolve\",1,81]")
    );
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let mut raw = raw_server_with(Limits {
        max_message_size: 100,
        ..Limits::default()
    });
    raw.to_server
        .send(Ok(format!("[\"push\",\"{}\"]", "x".repeat(200))))
        .expect("send");
    let reply = next_text(&mut raw).await.expect("a reply");
    assert!(reply.contains("exceeds maximum size of 100"), "{reply}");
}
