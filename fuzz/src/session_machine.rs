//! A structure-aware fuzzer for the session state machine: the input is read as a sequence of
//! operations a hostile peer performs on a real server [`Session`] (push, pull, pipeline, map,
//! release, resolve, reject, abort, pipe, stream, blob, garbage, disconnect), each written as
//! the message a peer would send, with ids drawn from the ones the session has actually handed
//! out (and sometimes ones it has not).
//!
//! Invariants, checked after every operation and after the disconnect that ends every run:
//! - nothing panics (a panic aborts the process, as libFuzzer expects);
//! - the bytes the session buffers stay within its `max_buffered_bytes`, and the shared budget
//!   within its limit;
//! - after the disconnect: the import and export tables are back to empty, no byte is still
//!   charged to the session or the budget, and every object the session created for the peer
//!   (the main target, counters, callbacks) has been disposed.

use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use capnweb::{
    Budget, CallResult, Frame, Limits, RpcError, RpcTarget, Session, SessionStats, Stub, Transport,
    Value,
};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::{abort_on_panic, RUNTIME};

/// The limits of the fuzzed session: small, so the budgets are reached.
fn limits(budget: &Budget) -> Limits {
    Limits {
        max_buffered_bytes: 64 * 1024,
        budget: budget.clone(),
        max_calls_in_flight: 64,
        max_exports: 256,
        idle_timeout: None,
        ..Limits::default()
    }
}

/// What one run did (for tests that check the fuzzer reaches what it should).
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    /// Operations performed.
    pub steps: usize,
    /// Most bytes the session held after an operation.
    pub peak_buffered: usize,
    /// Most objects alive for the peer at once.
    pub peak_live: isize,
    /// How the session refused, if it did before the disconnect.
    pub refusal: Option<capnweb::Refusal>,
}

/// Runs one input. Panics (and so aborts) when an invariant breaks.
pub fn session_machine(data: &[u8]) -> Report {
    abort_on_panic();
    RUNTIME.with(|rt| rt.block_on(run(data)))
}

/// Reads the input a byte at a time; zeros once it is used up.
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.byte()) % items.len()]
    }
}

/// What the peer knows: ids it may use.
#[derive(Default)]
struct Peer {
    /// The next export id the server gives our push (pushes, pipes and streams take one each).
    next_push: i64,
    /// Pipe ids we opened.
    pipes: Vec<i64>,
    /// Pipes whose readable end has not been taken yet.
    readables: Vec<i64>,
    /// Our pushes (and pipes) the server still holds: we have not released them.
    held: Vec<i64>,
    /// Ids the server exported to us (its stubs and promises, negative).
    server_exports: Vec<i64>,
    /// How many pushes the server sent us (its imports 1..=n we may resolve or reject).
    server_pushes: i64,
    /// Our next export id (callbacks we pass, negative).
    next_ours: i64,
}

impl Peer {
    fn any_push(&self, input: &mut Input<'_>) -> i64 {
        // Mostly ids the server still holds; now and then a released, future or bogus one.
        let b = input.byte();
        if b >= 240 {
            i64::from(b % 4) - 1 + self.next_push * i64::from(b % 2)
        } else if self.held.is_empty() {
            0
        } else {
            self.held[usize::from(b) % self.held.len()]
        }
    }

    fn target(&self, input: &mut Input<'_>) -> i64 {
        match input.byte() % 4 {
            0 => 0,
            1 if !self.server_exports.is_empty() => {
                self.server_exports[usize::from(input.byte()) % self.server_exports.len()]
            }
            _ => self.any_push(input),
        }
    }
}

const METHODS: [&str; 8] = [
    "square",
    "echo",
    "makeCounter",
    "callSquare",
    "delay",
    "fib",
    "increment",
    "nosuch",
];

/// A small argument expression.
fn arg(input: &mut Input<'_>, peer: &mut Peer) -> String {
    match input.byte() % 9 {
        0 => format!("{}", input.byte()),
        1 => "\"text\\ud800\"".to_owned(),
        2 => "[[1,[\"undefined\"],null]]".to_owned(),
        3 => {
            peer.next_ours -= 1;
            format!("[\"export\",{}]", peer.next_ours)
        }
        4 => {
            peer.next_ours -= 1;
            format!("[\"promise\",{}]", peer.next_ours)
        }
        5 => format!("[\"pipeline\",{}]", peer.any_push(input)),
        6 => format!("[\"import\",{}]", peer.target(input)),
        7 => "[\"bytes\",\"AAECAw\"]".to_owned(),
        _ => "{\"a\":[\"bigint\",\"12345678901234567890\"]}".to_owned(),
    }
}

/// The next operation as messages to send; `None` is a disconnect.
fn operation(input: &mut Input<'_>, peer: &mut Peer) -> Option<Vec<String>> {
    // A push (or pipe) the server holds until we release it.
    let push = |peer: &mut Peer, msg: String| {
        peer.held.push(peer.next_push);
        peer.next_push += 1;
        msg
    };
    // A stream message: the server releases it itself once it has answered.
    let stream = |peer: &mut Peer, msg: String| {
        peer.next_push += 1;
        msg
    };
    Some(match input.byte() % 16 {
        0..=2 => {
            let target = peer.target(input);
            let method = input.pick(&METHODS);
            let args = (0..input.byte() % 3)
                .map(|_| arg(input, peer))
                .collect::<Vec<_>>()
                .join(",");
            vec![push(
                peer,
                format!("[\"push\",[\"pipeline\",{target},[\"{method}\"],[{args}]]]"),
            )]
        }
        3 => vec![format!("[\"pull\",{}]", peer.any_push(input))],
        4 => {
            let target = peer.target(input);
            vec![push(
                peer,
                format!("[\"push\",[\"pipeline\",{target},[\"value\"]]]"),
            )]
        }
        5 => {
            let id = peer.any_push(input);
            let count = match input.byte() % 8 {
                7 => 2,
                6 => 0,
                _ => 1,
            };
            if count > 0 {
                peer.held.retain(|h| *h != id);
            }
            vec![format!("[\"release\",{id},{count}]")]
        }
        6 => {
            let id = i64::from(input.byte()) % (peer.server_pushes + 2);
            let value = arg(input, peer);
            vec![format!("[\"resolve\",{id},{value}]")]
        }
        7 => {
            let id = i64::from(input.byte()) % (peer.server_pushes + 2);
            vec![format!("[\"reject\",{id},[\"error\",\"Error\",\"no\"]]")]
        }
        8 => {
            peer.pipes.push(peer.next_push);
            peer.readables.push(peer.next_push);
            vec![push(peer, "[\"pipe\"]".to_owned())]
        }
        9 | 10 => {
            let mut out = open_pipe(peer);
            let pipe = peer.pipes.last().copied().unwrap_or(1);
            let size = usize::from(input.byte()) * 256;
            let chunk = "A".repeat(size / 3 * 4);
            let times = 1 + input.byte() % 8;
            out.extend((0..times).map(|_| {
                stream(
                    peer,
                    format!(
                        "[\"stream\",[\"pipeline\",{pipe},[\"write\"],[[\"bytes\",\"{chunk}\"]]]]"
                    ),
                )
            }));
            out
        }
        11 => {
            let mut out = open_pipe(peer);
            let pipe = peer.pipes.last().copied().unwrap_or(1);
            out.push(stream(
                peer,
                format!("[\"stream\",[\"pipeline\",{pipe},[\"close\"],[]]]"),
            ));
            out
        }
        12 => {
            let mut out = Vec::new();
            if peer.readables.is_empty() {
                out = open_pipe_always(peer);
            }
            let pipe = peer.readables.pop().unwrap_or(1);
            out.push(push(
                peer,
                format!("[\"push\",[\"blob\",\"text/plain\",[\"readable\",{pipe}]]]"),
            ));
            out
        }
        13 => {
            let target = peer.target(input);
            vec![push(
                peer,
                format!(
                    "[\"push\",[\"remap\",{target},[],[],[[\"pipeline\",0,[\"square\"],[[\"pipeline\",-1,[]]]]]]]"
                ),
            )]
        }
        14 => match input.byte() % 4 {
            0 => vec!["[\"abort\",[\"error\",\"Error\",\"bye\"]]".to_owned()],
            1 => vec!["not json".to_owned()],
            2 => vec![format!(
                "[\"push\",{}]",
                "[".repeat(usize::from(input.byte()))
            )],
            _ => return None,
        },
        _ => {
            let value = arg(input, peer);
            vec![push(peer, format!("[\"push\",{value}]"))]
        }
    })
}

/// `["pipe"]` if the peer has none yet.
fn open_pipe(peer: &mut Peer) -> Vec<String> {
    if peer.pipes.is_empty() {
        open_pipe_always(peer)
    } else {
        Vec::new()
    }
}

fn open_pipe_always(peer: &mut Peer) -> Vec<String> {
    peer.pipes.push(peer.next_push);
    peer.readables.push(peer.next_push);
    peer.held.push(peer.next_push);
    peer.next_push += 1;
    vec!["[\"pipe\"]".to_owned()]
}

async fn run(data: &[u8]) -> Report {
    let mut report = Report::default();
    // Objects made for the peer and not yet disposed (the main target and counters).
    let live = Arc::new(AtomicIsize::new(0));
    let budget = Budget::new(256 * 1024);
    let limits = limits(&budget);
    let (to_server, incoming) = mpsc::unbounded_channel();
    let (outgoing, mut from_server) = mpsc::unbounded_channel();
    let incoming = futures::stream::unfold(incoming, |mut rx| async move {
        rx.recv().await.map(|m| (m, rx))
    })
    .boxed();
    let session = Session::new(
        Transport::new(incoming, outgoing),
        Some(Stub::new(Target::new(&live))),
        limits.clone(),
    );
    let mut input = Input { data, at: 0 };
    let mut peer = Peer {
        next_push: 1,
        ..Peer::default()
    };
    let mut steps = 0;
    while !input.done() && steps < 200 {
        steps += 1;
        let Some(messages) = operation(&mut input, &mut peer) else {
            break;
        };
        for m in messages {
            if to_server.send(Ok::<_, capnweb::TransportError>(m)).is_err() {
                break;
            }
        }
        settle().await;
        read_frames(&mut from_server, &mut peer);
        let used = session.buffered_bytes();
        assert!(
            used <= limits.max_buffered_bytes,
            "session buffers {used} bytes, past its limit of {}",
            limits.max_buffered_bytes
        );
        assert!(budget.used() <= budget.limit(), "budget overdrawn");
        report.steps = steps;
        report.peak_buffered = report.peak_buffered.max(used);
        report.peak_live = report.peak_live.max(live.load(Ordering::SeqCst));
        if session.broken().is_some() {
            report.refusal = session.refusal();
            if std::env::var_os("SESSION_FUZZ_DEBUG").is_some() {
                eprintln!("step {steps}: {:?}", session.broken());
            }
            break;
        }
    }
    // Disconnect, and let every timer and task run out.
    drop(to_server);
    for _ in 0..50 {
        if session.broken().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        session.broken().is_some(),
        "the session outlived its connection"
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    settle().await;
    while from_server.try_recv().is_ok() {}
    assert_eq!(
        session.stats(),
        SessionStats {
            imports: 0,
            exports: 0
        },
        "tables not empty after the disconnect"
    );
    assert_eq!(session.buffered_bytes(), 0, "bytes still charged");
    assert_eq!(budget.used(), 0, "budget not returned");
    drop(session);
    settle().await;
    let live = live.load(Ordering::SeqCst);
    assert_eq!(
        live, 0,
        "{live} objects made for the peer were never disposed"
    );
    report
}

/// Lets every task that can run, run.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Learns ids from what the server sent.
fn read_frames(rx: &mut mpsc::UnboundedReceiver<Frame>, peer: &mut Peer) {
    while let Ok(frame) = rx.try_recv() {
        let Frame::Text(t) = frame else { continue };
        if t.starts_with("[\"push\"") || t.starts_with("[\"pipe\"") || t.starts_with("[\"stream\"")
        {
            peer.server_pushes += 1;
        }
        // Ids of the stubs and promises the server exports to us.
        for marker in ["[\"export\",", "[\"promise\","] {
            let mut rest = t.as_str();
            while let Some(at) = rest.find(marker) {
                rest = &rest[at + marker.len()..];
                let digits: String = rest
                    .chars()
                    .take_while(|c| *c == '-' || c.is_ascii_digit())
                    .collect();
                if let Ok(id) = digits.parse::<i64>() {
                    if peer.server_exports.len() < 64 {
                        peer.server_exports.push(id);
                    }
                }
            }
        }
    }
}

/// The main target (and counters): counted while alive.
struct Target {
    live: Arc<AtomicIsize>,
}

impl Target {
    fn new(live: &Arc<AtomicIsize>) -> Target {
        live.fetch_add(1, Ordering::SeqCst);
        Target { live: live.clone() }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RpcTarget for Target {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        let first = args.first().cloned().unwrap_or_default();
        let result = match method {
            "square" => first
                .as_f64()
                .map(|n| Value::Number(n * n))
                .ok_or_else(|| RpcError::type_error("square needs a number")),
            "echo" => Ok(first),
            "fib" => Ok(Value::Array(vec![Value::Number(0.0), Value::Number(1.0)])),
            "makeCounter" => Ok(Value::Stub(Stub::new(Target::new(&self.live)))),
            "increment" => Ok(Value::Number(1.0)),
            "callSquare" | "delay" => {
                let ms = if method == "delay" { 500 } else { 0 };
                return Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    match first {
                        Value::Stub(s) => {
                            let call = std::future::IntoFuture::into_future(
                                s.call_fn(vec![Value::Number(3.0)]),
                            );
                            tokio::time::timeout(Duration::from_secs(2), call)
                                .await
                                .map_err(|_| RpcError::error("callback timed out"))?
                        }
                        other => Ok(other),
                    }
                });
            }
            other => return capnweb::method_not_found(other),
        };
        Box::pin(async move { result })
    }

    fn get(self: Arc<Self>, name: &str) -> CallResult {
        let v = if name == "value" {
            Value::Number(7.0)
        } else {
            Value::Undefined
        };
        Box::pin(async move { Ok(v) })
    }
}
