//! The fuzz harness for capnweb's message decoder, shared by the `cargo fuzz` target
//! (`fuzz_targets/decode_message.rs`, libFuzzer, needs nightly) and by a stable-Rust smoke run
//! (`tests/smoke.rs`, part of `cargo test --workspace`) that feeds it seeds and mutations.
//!
//! [`decode_message`] checks two properties of one untrusted input:
//! 1. **The value codec is stable**: whatever `deserialize` accepts, `serialize` writes back,
//!    and reading that again writes the same text (no panic, no drift).
//! 2. **A session survives it**: the input arrives as a message from a peer; the session must
//!    process it without panicking and then either abort cleanly or still answer a fresh call.
//!
//! Panics anywhere, including in tasks the session spawns (which tokio would otherwise
//! swallow), abort the process, as libFuzzer expects.

use std::future::IntoFuture;
use std::sync::{Arc, Once};
use std::time::Duration;

use capnweb::{CallResult, Frame, Limits, RpcError, RpcTarget, Session, Stub, Transport, Value};
use futures::StreamExt;
use tokio::sync::mpsc;

/// The seed corpus (`fuzz/seeds/`, one message per file): one of each message type and of the
/// expression forms. `cargo fuzz run decode_message fuzz/seeds` starts from these too.
pub fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = std::fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
            text.trim_ascii_end().to_vec()
        })
        .collect()
}

/// Runs one input through the codec and a session. Panics (and so aborts) on a bug.
pub fn decode_message(data: &[u8]) {
    abort_on_panic();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    codec_is_stable(text);
    RUNTIME.with(|rt| rt.block_on(session_survives(text)));
}

fn codec_is_stable(text: &str) {
    let Ok(value) = capnweb::deserialize(text) else {
        return;
    };
    let Ok(first) = capnweb::serialize(&value) else {
        return;
    };
    let again = capnweb::deserialize(&first)
        .unwrap_or_else(|e| panic!("re-reading our own output {first:?} failed: {e}"));
    let second =
        capnweb::serialize(&again).unwrap_or_else(|e| panic!("re-writing {first:?} failed: {e}"));
    assert_eq!(first, second, "serialize is not stable for input {text:?}");
}

async fn session_survives(text: &str) {
    let (to_server, incoming) = mpsc::unbounded_channel();
    let (outgoing, mut from_server) = mpsc::unbounded_channel();
    let incoming = futures::stream::unfold(incoming, |mut rx| async move {
        rx.recv().await.map(|m| (m, rx))
    })
    .boxed();
    let session = Session::new(
        Transport::new(incoming, outgoing),
        Some(Stub::new(Probe)),
        Limits::default(),
    );
    let send = |m: String| to_server.send(Ok::<_, capnweb::TransportError>(m)).is_ok();
    send(text.to_owned());
    // The probe: a fresh call, pulled. Its id is 1, or 2 if the input was an accepted push.
    send(r#"["push",["pipeline",0,["square"],[3]]]"#.to_owned());
    for id in 1..=2 {
        send(format!(r#"["pull",{id}]"#));
    }
    // With time paused, a timeout fires as soon as nothing else can run: no wall-clock wait.
    while let Ok(Some(frame)) =
        tokio::time::timeout(Duration::from_secs(1), from_server.recv()).await
    {
        match frame {
            Frame::Text(t) if t.starts_with(r#"["abort""#) => break,
            Frame::Text(t) if t == r#"["resolve",1,9]"# || t == r#"["resolve",2,9]"# => break,
            Frame::Text(_) => {}
            Frame::Close { .. } => break,
            _ => {}
        }
    }
    drop(session);
}

/// The main capability of the fuzzed session: enough methods for the seeds to reach real work.
struct Probe;

impl RpcTarget for Probe {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let result = match method {
            "square" => match args.first().and_then(Value::as_f64) {
                Some(n) => Ok(Value::Number(n * n)),
                None => Err(RpcError::type_error("square needs a number")),
            },
            "echo" => Ok(args.into_iter().next().unwrap_or_default()),
            "fib" => Ok(Value::Array(vec![Value::Number(0.0), Value::Number(1.0)])),
            "callSquare" => {
                return Box::pin(async move {
                    let Some(Value::Stub(s)) = args.first() else {
                        return Err(RpcError::type_error("need stub"));
                    };
                    let arg = args.get(1).cloned().unwrap_or_default();
                    // Bounded, so a peer that never answers cannot stall the harness.
                    let call = s.call("square", vec![arg]).into_future();
                    tokio::time::timeout(Duration::from_secs(1), call)
                        .await
                        .map_err(|_| RpcError::type_error("callback timed out"))?
                });
            }
            other => return capnweb::method_not_found(other),
        };
        Box::pin(async move { result })
    }
}

mod session_machine;
pub use session_machine::session_machine;

thread_local! {
    pub(crate) static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
}

pub(crate) fn abort_on_panic() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            std::process::abort();
        }));
    });
}
