//! The session limits table against a hostile peer driving raw frames: each limit refuses the
//! way the table says (abort and close 3000, close 1013, close 1001), buffered bytes return to
//! zero, and a writer that waits for its writes is paced by the reader instead of refused.

use std::time::Duration;

use capnweb::{Budget, Frame, Limits, ReadableStream, Refusal, Session, Transport, Value};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::api::Api;

/// A server session driven by raw frames.
struct Raw {
    to_server: mpsc::UnboundedSender<Result<String, capnweb::TransportError>>,
    from_server: mpsc::UnboundedReceiver<Frame>,
    session: Session,
}

fn raw_server(limits: Limits) -> Raw {
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
        session,
    }
}

impl Raw {
    fn send(&self, text: impl Into<String>) {
        self.to_server.send(Ok(text.into())).expect("send");
    }

    /// Frames until the close frame: the texts, and the close's code and reason.
    async fn until_close(&mut self) -> (Vec<String>, u16, String) {
        self.until_close_within(Duration::from_secs(10)).await
    }

    async fn until_close_within(&mut self, limit: Duration) -> (Vec<String>, u16, String) {
        let mut texts = Vec::new();
        loop {
            match tokio::time::timeout(limit, self.from_server.recv()).await {
                Ok(Some(Frame::Text(t))) => texts.push(t),
                Ok(Some(Frame::Close { code, reason })) => return (texts, code, reason),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("no close frame; got {texts:?}"),
            }
        }
    }
}

/// A stream write of `n` bytes into pipe `pipe` (a `["stream", ...]` message).
fn write_chunk(pipe: i64, n: usize) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(vec![7u8; n]);
    format!("[\"stream\",[\"pipeline\",{pipe},[\"write\"],[[\"bytes\",\"{b64}\"]]]]")
}

const KIB: usize = 1024;

fn small_held() -> Limits {
    Limits {
        max_held_bytes: 256 * KIB,
        ..Limits::default()
    }
}

fn small_buffer() -> Limits {
    Limits {
        max_buffered_bytes: 256 * KIB,
        ..Limits::default()
    }
}

#[tokio::test]
async fn writes_into_an_unread_pipe_past_the_session_buffer_abort_with_close_3000() {
    let mut raw = raw_server(small_buffer());
    raw.send("[\"pipe\"]");
    for _ in 0..10 {
        raw.send(write_chunk(1, 64 * KIB));
    }
    let (texts, code, reason) = raw.until_close().await;
    let abort = texts
        .iter()
        .find(|t| t.starts_with("[\"abort\""))
        .expect("an abort message");
    assert!(abort.contains("RangeError"), "{abort}");
    assert!(abort.contains("max_buffered_bytes"), "{abort}");
    assert_eq!(code, Refusal::Aborted.close_code());
    assert!(reason.contains("max_buffered_bytes"), "{reason}");
    assert_eq!(raw.session.refusal(), Some(Refusal::Aborted));
    assert_eq!(raw.session.buffered_bytes(), 0, "every charge released");
}

#[tokio::test]
async fn a_blob_read_of_a_pipe_is_charged_until_it_completes() {
    let mut raw = raw_server(small_buffer());
    raw.send("[\"pipe\"]");
    raw.send("[\"push\",[\"blob\",\"\",[\"readable\",1]]]");
    for _ in 0..10 {
        raw.send(write_chunk(1, 64 * KIB));
    }
    let (texts, code, _) = raw.until_close().await;
    assert!(
        texts.iter().any(|t| t.contains("max_buffered_bytes")),
        "{texts:?}"
    );
    assert_eq!(code, 3000);
    assert_eq!(raw.session.buffered_bytes(), 0);
}

#[tokio::test]
async fn a_pipe_within_the_budget_is_read_whole() {
    let raw = raw_server(small_buffer());
    raw.send("[\"pipe\"]");
    raw.send("[\"push\",[\"blob\",\"text/plain\",[\"readable\",1]]]");
    raw.send(write_chunk(1, 100 * KIB));
    raw.send("[\"stream\",[\"pipeline\",1,[\"close\"],[]]]");
    raw.send("[\"release\",1,1]");
    raw.send("[\"pull\",2]");
    let mut raw = raw;
    let resolve = loop {
        match tokio::time::timeout(Duration::from_secs(10), raw.from_server.recv()).await {
            Ok(Some(Frame::Text(t))) if t.starts_with("[\"resolve\",2,") => break t,
            Ok(Some(Frame::Text(_))) => {}
            other => panic!("no resolve: {other:?}"),
        }
    };
    assert!(resolve.contains("\"blob\""), "{}", &resolve[..80]);
    assert!(raw.session.broken().is_none());
}

#[tokio::test]
async fn the_shared_budget_closes_the_session_that_asks_with_1013() {
    let budget = Budget::new(200 * KIB);
    let limits = Limits {
        max_buffered_bytes: 1024 * KIB,
        budget: budget.clone(),
        ..Limits::default()
    };
    let mut raw = raw_server(limits);
    raw.send("[\"pipe\"]");
    for _ in 0..10 {
        raw.send(write_chunk(1, 64 * KIB));
    }
    let (texts, code, reason) = raw.until_close().await;
    assert_eq!(code, Refusal::Overloaded.close_code(), "{reason} {texts:?}");
    assert!(reason.contains("budget"), "{reason}");
    assert_eq!(budget.used(), 0, "the budget is whole again");
}

#[tokio::test]
async fn calls_in_flight_past_the_limit_abort_the_session() {
    let mut raw = raw_server(Limits {
        max_calls_in_flight: 5,
        ..Limits::default()
    });
    for _ in 0..6 {
        raw.send("[\"push\",[\"pipeline\",0,[\"square\"],[2]]]");
    }
    let (texts, code, _) = raw.until_close().await;
    assert!(
        texts.iter().any(|t| t.contains("max_calls_in_flight")),
        "{texts:?}"
    );
    assert_eq!(code, 3000);
}

#[tokio::test]
async fn results_the_peer_never_releases_are_charged_until_the_session_is_refused() {
    // Small calls with 64 KiB answers, never released (pulled or not): before, every answer
    // stayed in the export table up to max_calls_in_flight (10,000: 640 MiB here, and 10,000
    // times whatever a method returns in general). Now they count against the session buffer.
    let mut raw = raw_server(small_held());
    for id in 1..=10 {
        raw.send("[\"push\",[\"pipeline\",0,[\"bytes\"],[65536]]]");
        if id % 2 == 0 {
            raw.send(format!("[\"pull\",{id}]"));
        }
    }
    let (texts, code, reason) = raw.until_close().await;
    assert_eq!(code, Refusal::Aborted.close_code(), "{reason}");
    assert!(reason.contains("max_held_bytes"), "{reason}");
    assert!(
        texts.iter().any(|t| t.contains("not released")),
        "the abort says what was held: {:?}",
        texts
            .iter()
            .map(|t| &t[..t.len().min(120)])
            .collect::<Vec<_>>()
    );
    assert_eq!(raw.session.buffered_bytes(), 0, "every charge released");
    assert_eq!(raw.session.held_bytes(), 0, "every result let go");
}

#[tokio::test]
async fn results_released_as_they_come_are_not_held_against_the_session() {
    // The same answers, each pulled and released before the next: twenty of them (1.25 MiB
    // in all) pass through a session that may hold 256 KiB.
    let mut raw = raw_server(small_held());
    for id in 1..=20 {
        raw.send("[\"push\",[\"pipeline\",0,[\"bytes\"],[65536]]]");
        raw.send(format!("[\"pull\",{id}]"));
        match tokio::time::timeout(Duration::from_secs(5), raw.from_server.recv()).await {
            Ok(Some(Frame::Text(t))) => assert!(
                t.starts_with(&format!("[\"resolve\",{id},")),
                "{}",
                &t[..40]
            ),
            other => panic!("call {id}: {other:?}"),
        }
        raw.send(format!("[\"release\",{id},1]"));
    }
    assert!(raw.session.broken().is_none());
    // Messages are handled in order: once call 21 is answered, the last release was handled.
    raw.send("[\"push\",[\"pipeline\",0,[\"square\"],[3]]]");
    raw.send("[\"pull\",21]");
    match tokio::time::timeout(Duration::from_secs(5), raw.from_server.recv()).await {
        Ok(Some(Frame::Text(t))) => assert_eq!(t, "[\"resolve\",21,9]"),
        other => panic!("call 21: {other:?}"),
    }
    assert!(
        raw.session.held_bytes() < 1024,
        "only call 21's number is held: {}",
        raw.session.held_bytes()
    );
}

#[tokio::test]
async fn released_calls_do_not_count_against_calls_in_flight() {
    let raw = raw_server(Limits {
        max_calls_in_flight: 2,
        ..Limits::default()
    });
    let mut raw = raw;
    for id in 1..=10 {
        raw.send("[\"push\",[\"pipeline\",0,[\"square\"],[3]]]");
        raw.send(format!("[\"pull\",{id}]"));
        match tokio::time::timeout(Duration::from_secs(5), raw.from_server.recv()).await {
            Ok(Some(Frame::Text(t))) => assert_eq!(t, format!("[\"resolve\",{id},9]")),
            other => panic!("call {id}: {other:?}"),
        }
        raw.send(format!("[\"release\",{id},1]"));
    }
    assert!(raw.session.broken().is_none());
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_is_closed_with_1001() {
    let mut raw = raw_server(Limits {
        idle_timeout: Some(Duration::from_secs(60)),
        ..Limits::default()
    });
    raw.send("[\"push\",[\"pipeline\",0,[\"square\"],[2]]]");
    raw.send("[\"pull\",1]");
    let (texts, code, reason) = raw.until_close_within(Duration::from_secs(3600)).await;
    assert_eq!(texts, vec!["[\"resolve\",1,4]".to_owned()]);
    assert_eq!(code, Refusal::Idle.close_code());
    assert!(reason.contains("idle"), "{reason}");
    assert_eq!(raw.session.refusal(), Some(Refusal::Idle));
}

#[tokio::test]
async fn a_write_completes_only_when_the_reader_has_room() {
    let (tx, rs) = ReadableStream::channel();
    let chunk = || Value::Bytes(capnweb::Bytes::new(vec![1; 600 * KIB]));
    // The first chunk fits; the second is queued but waits (1.2 MiB would be past 1 MiB).
    tx.write(chunk()).await.expect("first write");
    let second = tokio::spawn({
        let tx = tx.clone();
        async move { tx.write(chunk()).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!second.is_finished(), "the write waits for the reader");
    assert_eq!(tx.backlog(), 2);
    let first = rs.next().await.expect("a chunk").expect("ok");
    assert!(matches!(first, Value::Bytes(b) if b.data.len() == 600 * KIB));
    second
        .await
        .expect("join")
        .expect("second write completes once read");
    drop(tx);
    assert!(rs.next().await.is_some());
    assert!(rs.next().await.is_none());
}

#[tokio::test]
async fn a_blob_read_waiting_on_a_pipe_whose_writer_it_holds_is_ended_by_the_disconnect() {
    // Found by the session fuzzer: a call pipelined on the blob promise holds the pipe's
    // writer, the blob read waits for that writer to close: a cycle that held the chunks (and
    // their charge) after the peer had gone.
    let raw = raw_server(small_buffer());
    raw.send("[\"pipe\"]");
    raw.send("[\"push\",[\"blob\",\"\",[\"readable\",1]]]");
    raw.send(write_chunk(1, 10 * KIB));
    raw.send("[\"push\",[\"pipeline\",2,[\"x\"],[[\"import\",1]]]]");
    let session = raw.session.clone();
    tokio::time::timeout(Duration::from_secs(5), async {
        while session.buffered_bytes() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the chunk is charged while the blob is read");
    drop(raw);
    tokio::time::timeout(Duration::from_secs(5), async {
        while session.buffered_bytes() > 0 || session.broken().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the disconnect releases every charged byte");
}

#[tokio::test]
async fn a_batch_whose_answers_outgrow_the_session_buffer_is_aborted() {
    // One 100 KiB string pushed once, then echoed twenty times by pipelining: 2 MiB of answers
    // from a 100 KiB request. The answers are charged while the batch holds them.
    let mut body = vec![format!("[\"push\",\"{}\"]", "y".repeat(100 * KIB))];
    for id in 2..22 {
        body.push("[\"push\",[\"pipeline\",0,[\"echo\"],[[\"pipeline\",1]]]]".to_owned());
        body.push(format!("[\"pull\",{id}]"));
    }
    let (main, _) = Api::stub();
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        capnweb::transport::batch::answer_batch(&body.join("\n"), main, small_buffer()),
    )
    .await
    .expect("the batch finishes");
    assert!(
        answer.body.len() < 512 * KIB,
        "{} bytes answered",
        answer.body.len()
    );
    let last = answer.body.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("[\"abort\""),
        "{}",
        &last[..last.len().min(200)]
    );
    assert!(
        last.contains("max_buffered_bytes"),
        "{}",
        &last[..last.len().min(300)]
    );
    assert_eq!(answer.refusal, Some(Refusal::Aborted));
}

#[tokio::test]
async fn a_batch_within_the_budget_answers_every_call() {
    let mut body = vec![format!("[\"push\",\"{}\"]", "y".repeat(10 * KIB))];
    for id in 2..7 {
        body.push("[\"push\",[\"pipeline\",0,[\"echo\"],[[\"pipeline\",1]]]]".to_owned());
        body.push(format!("[\"pull\",{id}]"));
    }
    let (main, _) = Api::stub();
    let answer =
        capnweb::transport::batch::answer_batch(&body.join("\n"), main, small_buffer()).await;
    assert_eq!(answer.body.lines().count(), 5, "one resolve per pull");
    assert!(answer.refusal.is_none());
}
