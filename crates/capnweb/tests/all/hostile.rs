//! Hostile input: malformed messages abort the session with an error and never panic; other
//! sessions carry on. Also a mutation fuzz of the message decoder that runs on stable Rust.

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

/// Deterministic xorshift, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_messages_never_panic_or_hang_the_session() {
    let seeds = [
        "[\"push\",[\"pipeline\",0,[\"square\"],[3]]]",
        "[\"push\",[\"pipeline\",0,[\"echo\"],[[[1,[\"bigint\",\"5\"],{\"a\":[\"date\",1]}]]]]]",
        "[\"push\",[\"remap\",0,[\"fib\"],[],[[\"pipeline\",0,[\"x\"]]]]]",
        "[\"push\",[\"pipeline\",0,[\"callSquare\"],[[\"export\",-1],2]]]",
        "[\"resolve\",-1,[\"error\",\"Error\",\"x\",null,{\"a\":1}]]",
        "[\"release\",1,1]",
        "[\"pipe\"]",
        "[\"stream\",[\"pipeline\",1,[\"write\"],[[\"bytes\",\"AAE\"]]]]",
    ];
    let alphabet: &[u8] = b"[]{}\",:-0123456789abcdefghijklmnopqrstuvwxyz \\";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..400 {
        let mut raw = raw_server();
        for _ in 0..4 {
            let mut msg = seeds[(rng.next() % seeds.len() as u64) as usize]
                .as_bytes()
                .to_vec();
            for _ in 0..(rng.next() % 4) {
                let pos = (rng.next() % (msg.len() as u64 + 1)) as usize;
                let byte = alphabet[(rng.next() % alphabet.len() as u64) as usize];
                match rng.next() % 3 {
                    0 if pos < msg.len() => msg[pos] = byte,
                    1 if pos < msg.len() => {
                        msg.remove(pos);
                    }
                    _ => msg.insert(pos, byte),
                }
            }
            let _ = raw
                .to_server
                .send(Ok(String::from_utf8_lossy(&msg).into_owned()));
        }
        // The session must stay responsive: it answers a fresh pulled call, or it aborted.
        let probe_sent = raw
            .to_server
            .send(Ok("[\"push\",[\"pipeline\",0,[\"square\"],[2]]]".into()));
        let mut alive = probe_sent.is_ok();
        loop {
            match tokio::time::timeout(Duration::from_millis(200), raw.from_server.recv()).await {
                Ok(Some(Frame::Text(t))) if t.starts_with("[\"abort\"") => {
                    alive = false;
                    break;
                }
                Ok(Some(Frame::Text(_))) => continue,
                Ok(_) => {
                    alive = false;
                    break;
                }
                Err(_) => break,
            }
        }
        if alive {
            // Find the probe's id: it is the last push, so ask the session's stats-free way:
            // a pull of every small id must not panic either.
            for id in 1..8 {
                let _ = raw.to_server.send(Ok(format!("[\"pull\",{id}]")));
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), raw.from_server.recv()).await;
        }
        let _ = round;
    }
}
