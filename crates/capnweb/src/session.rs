//! A capnweb session: the import and export tables of one connection, the message loop, and
//! the hooks that stand for the peer's objects here.
//!
//! Id allocation follows the JavaScript implementation exactly: the peer's pushes (and pipes
//! and streams) take positive export ids 1, 2, 3... in the order they arrive; our own pushes
//! take positive import ids in the order we send them; objects we export get fresh negative
//! ids -1, -2, ... (a fresh one for every introduction, since the JavaScript importer releases
//! each id once); id 0 is each side's main object and is never released.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::budget::{Account, Charge};
use crate::codec::{devaluate, evaluate, Exporter, Importer, NoSession};
use crate::hook::{error_hook, value_hook, Hook, HookRef, PayloadHook};
use crate::json::to_js_string;
use crate::limits::{utf16_len, LimitExceeded, Limits, Refusal};
use crate::stream::{ReadableStream, StreamEnd, StreamSender, WriteError};
use crate::value::{PathKey, Value};
use crate::{rt, RpcError, Stub, TransportError};

/// How long a refused or aborted session keeps reading (and discarding) the peer's frames
/// while it waits for the peer's close reply, so the peer reads our close code.
const CLOSE_REPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One frame a session asks its transport to send.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Frame {
    /// A message (one JSON text).
    Text(String),
    /// Close the connection with a code (see [`Refusal`]) and a reason for the peer.
    Close {
        /// The WebSocket close code.
        code: u16,
        /// Why, for people.
        reason: String,
    },
}

/// A frame and the bytes it holds in its session's budget until the transport has written it.
pub(crate) struct Outbound(pub(crate) Frame, pub(crate) Charge);

/// Where a session's frames go.
enum Outgoing {
    /// A channel of plain frames (in-memory pair, HTTP batch, custom transports).
    Plain(mpsc::UnboundedSender<Frame>),
    /// A channel whose consumer releases each frame's charge once written (WebSocket), and a
    /// signal that makes it stop writing and close the connection.
    Charged(mpsc::UnboundedSender<Outbound>, Arc<Notify>),
    /// A channel whose consumer holds every frame (and its charge) until the session ends
    /// (HTTP batch): charged, but reading never waits for it to drain.
    Collected(mpsc::UnboundedSender<Outbound>),
}

/// The two directions of a connection, as a session sees them.
pub struct Transport {
    incoming: BoxStream<'static, Result<String, TransportError>>,
    outgoing: Outgoing,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transport")
    }
}

impl Transport {
    /// A transport from a stream of incoming messages and a channel for outgoing frames. The
    /// session ends when `incoming` ends (the peer went away).
    pub fn new(
        incoming: BoxStream<'static, Result<String, TransportError>>,
        outgoing: mpsc::UnboundedSender<Frame>,
    ) -> Self {
        Transport {
            incoming,
            outgoing: Outgoing::Plain(outgoing),
        }
    }

    /// A transport whose writer releases each frame's charge once it is written, and stops
    /// (dropping what it has not written) when `kill` is notified.
    pub(crate) fn charged(
        incoming: BoxStream<'static, Result<String, TransportError>>,
        outgoing: mpsc::UnboundedSender<Outbound>,
        kill: Arc<Notify>,
    ) -> Self {
        Transport {
            incoming,
            outgoing: Outgoing::Charged(outgoing, kill),
        }
    }

    /// A transport whose consumer collects every frame until the session ends (HTTP batch):
    /// the frames stay charged to the session's buffer budget while they are held.
    pub(crate) fn collected(
        incoming: BoxStream<'static, Result<String, TransportError>>,
        outgoing: mpsc::UnboundedSender<Outbound>,
    ) -> Self {
        Transport {
            incoming,
            outgoing: Outgoing::Collected(outgoing),
        }
    }
}

/// Counts of a session's table entries, as the JavaScript `RpcSession.getStats()` counts them
/// (main entries included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    /// Entries in the import table.
    pub imports: usize,
    /// Entries in the export table.
    pub exports: usize,
}

struct Export {
    hook: HookRef,
    refcount: u64,
    resolving: bool,
    auto_release: bool,
    pipe: Option<ReadableStream>,
    /// For the peer's push: the bytes of its settled result, charged to the session's buffer
    /// until the peer releases it.
    held: Charge,
}

struct State {
    exports: HashMap<i64, Export>,
    imports: HashMap<i64, Weak<ImportEntry>>,
    next_export: i64,
    next_peer_export: i64,
    next_import: i64,
    broken: Option<RpcError>,
    refusal: Option<Refusal>,
    on_broken: Vec<Box<dyn FnOnce(RpcError) + Send>>,
    resolving: usize,
    /// Entries with positive ids: what the peer pushed (calls, pipes, stream writes) and has
    /// not released.
    peer_entries: usize,
    /// The pipes the peer opened, ended when the session ends.
    peer_pipes: Vec<StreamEnd>,
}

pub(crate) struct SessionInner {
    me: Weak<SessionInner>,
    tx: Outgoing,
    state: Mutex<State>,
    limits: Limits,
    settled: Notify,
    counters: Counters,
    account: Arc<Account>,
    /// Results of the peer's calls that it has not released (`max_held_bytes`).
    held: Arc<Account>,
    /// When the session started, and the last message either way (ms since then).
    started: tokio::time::Instant,
    last_activity: std::sync::atomic::AtomicU64,
    /// A limit the outgoing side went past: the session is refused as soon as it can be (the
    /// read loop checks before each message), and nothing more is queued meanwhile.
    over: Mutex<Option<LimitExceeded>>,
}

/// Message counters, for tests and metrics: how many frames went each way.
#[derive(Debug, Default)]
struct Counters {
    sent: std::sync::atomic::AtomicU64,
    received: std::sync::atomic::AtomicU64,
}

/// A live capnweb connection.
///
/// Dropping the `Session` handle does not end the connection: it lasts while the transport is
/// open, or until [`Session::abort`].
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
    main: Arc<ImportEntry>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Session {
    /// Starts a session over `transport`, offering `local_main` to the peer as its main
    /// object (id 0). Must be called within a tokio runtime, or capnweb uses its own.
    pub fn new(transport: Transport, local_main: Option<Stub>, limits: Limits) -> Session {
        let main_hook = match local_main {
            Some(s) => s.hook,
            None => error_hook(RpcError::error("This connection has no main object.")),
        };
        let inner = Arc::new_cyclic(|me| SessionInner {
            me: me.clone(),
            tx: transport.outgoing,
            state: Mutex::new(State {
                exports: HashMap::from([(
                    0,
                    Export {
                        hook: main_hook,
                        refcount: 1,
                        resolving: false,
                        auto_release: false,
                        pipe: None,
                        held: Charge::none(),
                    },
                )]),
                imports: HashMap::new(),
                next_export: -1,
                next_peer_export: 1,
                next_import: 1,
                broken: None,
                refusal: None,
                on_broken: Vec::new(),
                resolving: 0,
                peer_entries: 0,
                peer_pipes: Vec::new(),
            }),
            account: Account::new(limits.max_buffered_bytes, limits.budget.clone()),
            held: Account::new(limits.max_held_bytes, limits.budget.clone()),
            limits,
            settled: Notify::new(),
            counters: Counters::default(),
            started: tokio::time::Instant::now(),
            last_activity: std::sync::atomic::AtomicU64::new(0),
            over: Mutex::new(None),
        });
        let main = ImportEntry::new(&inner, 0, false, 0, false);
        inner.lock().imports.insert(0, Arc::downgrade(&main));
        let reader = inner.clone();
        rt::spawn(reader.read_loop(transport.incoming));
        Session { inner, main }
    }

    /// The peer's main object.
    pub fn remote_main(&self) -> Stub {
        Stub::from_hook(self.main.clone())
    }

    /// Table sizes right now.
    pub fn stats(&self) -> SessionStats {
        let st = self.inner.lock();
        SessionStats {
            imports: st.imports.len(),
            exports: st.exports.len(),
        }
    }

    /// Frames sent and received so far (for tests that count round trips).
    pub fn frame_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.inner.counters.sent.load(Relaxed),
            self.inner.counters.received.load(Relaxed),
        )
    }

    /// Waits until every result the peer asked for has been sent.
    pub async fn drain(&self) {
        loop {
            let notified = self.inner.settled.notified();
            {
                let st = self.inner.lock();
                if st.resolving == 0 || st.broken.is_some() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Ends the session: the peer is sent `reason`, and every pending call fails with it.
    pub fn abort(&self, reason: RpcError) {
        self.inner.abort(reason, true);
    }

    /// Why the session ended, if it has.
    pub fn broken(&self) -> Option<RpcError> {
        self.inner.lock().broken.clone()
    }

    /// How the session said no, if it ended by refusing something (a limit, the shared
    /// budget, idleness, a frame too large); `None` while it is open or when the peer left.
    pub fn refusal(&self) -> Option<Refusal> {
        self.inner.lock().refusal
    }

    /// Bytes this session holds in its buffer budget now (unread pipe chunks, blob bodies being
    /// read, frames queued for the peer).
    pub fn buffered_bytes(&self) -> usize {
        self.inner.account.used()
    }

    /// Bytes of results of the peer's calls this session holds until the peer releases them
    /// (`max_held_bytes`).
    pub fn held_bytes(&self) -> usize {
        self.inner.held.used()
    }

    /// Waits until the session ends and returns why.
    pub async fn closed(&self) -> RpcError {
        loop {
            let notified = self.inner.settled.notified();
            if let Some(e) = self.broken() {
                return e;
            }
            notified.await;
        }
    }
}

impl SessionInner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send_locked(&self, st: &State, msg: &Json) {
        self.send_text_locked(st, msg, false);
    }

    /// Sends a message; `last_word` (the `abort`) goes out even past a limit, uncharged.
    fn send_text_locked(&self, st: &State, msg: &Json, last_word: bool) {
        if st.broken.is_none() {
            self.counters
                .sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.touch();
            let text = to_js_string(msg);
            match &self.tx {
                Outgoing::Plain(tx) => {
                    let _ = tx.send(Frame::Text(text));
                }
                Outgoing::Charged(tx, _) | Outgoing::Collected(tx) if last_word => {
                    let _ = tx.send(Outbound(Frame::Text(text), Charge::none()));
                }
                Outgoing::Charged(tx, _) | Outgoing::Collected(tx) => {
                    let mut over = self.over.lock().unwrap_or_else(|e| e.into_inner());
                    if over.is_some() {
                        // Past a limit already: the session is about to be refused.
                        return;
                    }
                    let (charge, exceeded) = self.account.charge_outgoing(text.len());
                    if let Some(e) = exceeded {
                        drop(charge);
                        *over = Some(e);
                        // The state lock is held here: refuse from a task (the read loop also
                        // checks before its next message).
                        let me = self.me.clone();
                        rt::spawn(async move {
                            if let Some(inner) = me.upgrade() {
                                inner.refuse_if_over();
                            }
                        });
                        return;
                    }
                    let _ = tx.send(Outbound(Frame::Text(text), charge));
                }
            }
        }
    }

    fn send_close(&self, code: u16, reason: String) {
        let frame = Frame::Close { code, reason };
        match &self.tx {
            Outgoing::Plain(tx) => {
                let _ = tx.send(frame);
            }
            Outgoing::Collected(tx) => {
                let _ = tx.send(Outbound(frame, Charge::none()));
            }
            Outgoing::Charged(tx, kill) => {
                let _ = tx.send(Outbound(frame, Charge::none()));
                // A peer that does not read would keep the close (and everything queued before
                // it) from ever being written: give the writer a moment, then stop it.
                let kill = kill.clone();
                rt::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    kill.notify_one();
                });
            }
        }
    }

    /// Notes a message sent or received now (for the idle timeout).
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long since the last message either way.
    fn idle_for(&self) -> std::time::Duration {
        let last = self
            .last_activity
            .load(std::sync::atomic::Ordering::Relaxed);
        self.started
            .elapsed()
            .saturating_sub(std::time::Duration::from_millis(last))
    }

    /// Refuses the session if its outgoing side went past a limit.
    fn refuse_if_over(&self) {
        let over = self.over.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(e) = over {
            self.refuse(e);
        }
    }

    /// Ends the session because the peer went past a limit of the table.
    fn refuse(&self, e: LimitExceeded) {
        tracing::debug!("capnweb: refusing session: {e}");
        self.abort_as(e.to_rpc_error(), true, e.refusal());
    }

    fn send(&self, msg: &Json) {
        let st = self.lock();
        self.send_locked(&st, msg);
    }

    async fn read_loop(
        self: Arc<Self>,
        mut incoming: BoxStream<'static, Result<String, TransportError>>,
    ) {
        loop {
            self.refuse_if_over();
            if self.lock().broken.is_some() {
                // Refused or aborted while the peer may still be sending: dropping a socket
                // with unread data resets it, and the peer would never read our close code
                // (it would see 1006). Let its close reply arrive first, for a moment: frames
                // read meanwhile are discarded, so this holds a socket, not memory. (1 s was
                // too short for a peer busy writing 10 MB frames on a loaded 2-core machine.)
                let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, async {
                    while incoming.next().await.is_some() {}
                })
                .await;
                return;
            }
            // Backpressure: while half the buffer budget is queued for a peer that is not
            // reading, read nothing more from it.
            let high = self.account.limit() / 2;
            if matches!(self.tx, Outgoing::Charged(..)) && self.account.outgoing() > high {
                let idle = self.limits.idle_timeout;
                let drained = self.account.outgoing_below(high);
                match idle {
                    Some(d) => {
                        if tokio::time::timeout(d, drained).await.is_err() {
                            self.go_idle(d);
                            return;
                        }
                    }
                    None => drained.await,
                }
                continue;
            }
            let next = match self.limits.idle_timeout {
                None => incoming.next().await,
                Some(d) => {
                    match tokio::time::timeout(d.saturating_sub(self.idle_for()), incoming.next())
                        .await
                    {
                        Ok(next) => next,
                        Err(_) => {
                            if self.idle_for() >= d {
                                self.go_idle(d);
                                return;
                            }
                            continue;
                        }
                    }
                }
            };
            match next {
                Some(Ok(text)) => {
                    self.counters
                        .received
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.touch();
                    if let Err(e) = self.handle_message(&text) {
                        match e {
                            Fail::Limit(l) => self.refuse(l),
                            Fail::Error(e) => {
                                tracing::debug!("capnweb: aborting session: {e}");
                                self.abort(e, true)
                            }
                        }
                        // Let the peer's close reply arrive so the connection closes cleanly.
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                            while incoming.next().await.is_some() {}
                        })
                        .await;
                        return;
                    }
                }
                Some(Err(e)) => {
                    let refusal = match e {
                        TransportError::FrameTooLarge { .. } => Refusal::FrameTooLarge,
                        _ => Refusal::Aborted,
                    };
                    self.abort_as(
                        RpcError::error(format!("RPC transport failed: {e}")),
                        false,
                        refusal,
                    );
                    if refusal == Refusal::FrameTooLarge {
                        // The rest of the frame is still arriving: closing the socket now
                        // would reset it before the peer reads our close. Hold it a moment.
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        drop(incoming);
                    }
                    return;
                }
                None => {
                    self.abort(
                        RpcError::error("RPC session was closed by the peer."),
                        false,
                    );
                    return;
                }
            }
        }
    }

    /// Closes the session for idleness (close 1001).
    fn go_idle(&self, d: std::time::Duration) {
        self.abort_as(
            RpcError::error(format!(
                "RPC session was idle for {} s (idle_timeout)",
                d.as_secs()
            )),
            false,
            Refusal::Idle,
        );
    }

    fn handle_message(&self, text: &str) -> Result<(), Fail> {
        let max = self.limits.max_message_size;
        // Every code unit takes at least one byte: only a longer text needs counting.
        if text.len() > max && utf16_len(text) > max {
            return Err(Fail::Limit(LimitExceeded::MessageSize { max }));
        }
        self.handle_parsed(text)?;
        Ok(())
    }

    fn handle_parsed(&self, text: &str) -> Result<(), RpcError> {
        let msg = crate::codec::parse_json(text, &self.limits)?;
        let bad = || {
            let mut t = text.to_owned();
            if t.len() > 200 {
                let mut cut = 200;
                while !t.is_char_boundary(cut) {
                    cut -= 1;
                }
                t.truncate(cut);
            }
            RpcError::error(format!("bad RPC message: {t}"))
        };
        let Some(parts) = msg.as_array() else {
            return Err(bad());
        };
        let tag = parts.first().and_then(Json::as_str).unwrap_or("");
        let id_at = |i: usize| {
            parts.get(i).and_then(|j| {
                j.as_i64()
                    .or_else(|| j.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            })
        };
        match tag {
            "push" | "stream" if parts.len() > 1 => {
                let v = evaluate(&parts[1], self)?;
                let hook = value_hook(v);
                let id = self.add_peer_export(hook, tag == "stream", None)?;
                if tag == "stream" {
                    self.ensure_resolving(id)?;
                }
                Ok(())
            }
            "pipe" => {
                let (sender, readable) = ReadableStream::channel();
                {
                    let mut st = self.lock();
                    st.peer_pipes.retain(|p| p.is_open());
                    st.peer_pipes.push(sender.end_handle());
                }
                let hook: HookRef = Arc::new(PipeWriterHook {
                    sender: Mutex::new(Some(sender)),
                    session: self.me.clone(),
                });
                self.add_peer_export(hook, false, Some(readable))?;
                Ok(())
            }
            "pull" => {
                let id = id_at(1).ok_or_else(bad)?;
                self.ensure_resolving(id)
            }
            "resolve" | "reject" if parts.len() > 2 => {
                let id = id_at(1).ok_or_else(bad)?;
                let entry = self.lock().imports.get(&id).and_then(Weak::upgrade);
                let v = evaluate(&parts[2], self)?;
                if let Some(entry) = entry {
                    let hook = if tag == "resolve" {
                        value_hook(v)
                    } else {
                        error_hook(RpcError::from_value(v))
                    };
                    entry.resolve(hook);
                }
                Ok(())
            }
            "release" => {
                let (Some(id), Some(count)) = (id_at(1), id_at(2)) else {
                    return Err(bad());
                };
                self.release_export(id, u64::try_from(count).map_err(|_| bad())?)
            }
            "abort" if parts.len() > 1 => {
                let reason = evaluate(&parts[1], &NoSession(self.limits.clone()))
                    .unwrap_or_else(|e| e.into_value());
                self.abort(RpcError::from_value(reason), false);
                Ok(())
            }
            _ => Err(bad()),
        }
    }

    fn add_peer_export(
        &self,
        hook: HookRef,
        auto_release: bool,
        pipe: Option<ReadableStream>,
    ) -> Result<i64, RpcError> {
        let mut st = self.lock();
        let over = if st.exports.len() >= self.limits.max_exports {
            Some(LimitExceeded::Exports {
                max: self.limits.max_exports,
            })
        } else if st.peer_entries >= self.limits.max_calls_in_flight {
            Some(LimitExceeded::CallsInFlight {
                max: self.limits.max_calls_in_flight,
            })
        } else {
            None
        };
        if let Some(e) = over {
            drop(st);
            return Err(e.to_rpc_error());
        }
        st.peer_entries += 1;
        let id = st.next_peer_export;
        st.next_peer_export += 1;
        st.exports.insert(
            id,
            Export {
                hook: hook.clone(),
                refcount: 1,
                resolving: false,
                auto_release,
                pipe,
                held: Charge::none(),
            },
        );
        drop(st);
        // What the push settles to stays here until the peer releases it (pulled or not), so
        // its bytes are charged: a peer cannot pile up results it never releases.
        let me = self.me.clone();
        crate::hook::when_settled(
            hook,
            Box::new(move |settled| {
                if let Some(inner) = me.upgrade() {
                    inner.hold_result(id, settled.held_bytes());
                }
            }),
        );
        Ok(id)
    }

    /// Charges `bytes` of the settled result of the peer's push `id` to the session until
    /// the peer releases it; past `max_held_bytes` or the shared budget the session is
    /// refused, as for any other limit of the table.
    fn hold_result(&self, id: i64, bytes: usize) {
        match self
            .held
            .try_charge(bytes, "a result the peer has not released")
        {
            Ok(charge) => {
                let mut st = self.lock();
                if let Some(exp) = st.exports.get_mut(&id) {
                    exp.held = charge;
                }
                // Else it was released already: the charge is dropped with this scope.
            }
            Err(LimitExceeded::SessionBuffer {
                max, bytes, used, ..
            }) => self.refuse(LimitExceeded::HeldResults { max, bytes, used }),
            Err(e) => self.refuse(e),
        }
    }

    fn release_export(&self, id: i64, count: u64) -> Result<(), RpcError> {
        let removed = {
            let mut st = self.lock();
            let Some(exp) = st.exports.get_mut(&id) else {
                return Err(RpcError::error(format!("no such export ID: {id}")));
            };
            if exp.refcount < count {
                return Err(RpcError::error(format!(
                    "refcount would go negative: {} < {count}",
                    exp.refcount
                )));
            }
            exp.refcount -= count;
            if exp.refcount == 0 {
                if id > 0 {
                    st.peer_entries -= 1;
                }
                st.exports.remove(&id)
            } else {
                None
            }
        };
        drop(removed);
        Ok(())
    }

    fn ensure_resolving(&self, id: i64) -> Result<(), RpcError> {
        let (hook, auto_release) = {
            let mut st = self.lock();
            let Some(exp) = st.exports.get_mut(&id) else {
                return Err(RpcError::error(format!("no such export ID: {id}")));
            };
            if exp.resolving {
                return Ok(());
            }
            exp.resolving = true;
            let out = (exp.hook.clone(), exp.auto_release);
            st.resolving += 1;
            out
        };
        // A settled result (the common case for a pull that follows its push) is answered
        // inline, without a task.
        let mut pull = hook.pull();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let polled = {
            let _runtime = rt::handle().enter();
            pull.as_mut().poll(&mut cx)
        };
        if let std::task::Poll::Ready(result) = polled {
            self.send_resolution(id, result, auto_release);
            return Ok(());
        }
        let me = self.me.clone();
        rt::spawn(async move {
            let result = pull.await;
            if let Some(inner) = me.upgrade() {
                inner.send_resolution(id, result, auto_release);
            }
        });
        Ok(())
    }

    /// Sends the `resolve` or `reject` for export `id` and finishes its pull.
    fn send_resolution(&self, id: i64, result: Result<Value, RpcError>, auto_release: bool) {
        let ex = SendExporter::new(self);
        let msg = match result {
            Ok(v) => match self.devaluate_result(v, &ex) {
                Ok(j) => json!(["resolve", id, j]),
                Err(e) => json!(["reject", id, self.devaluate_error(&e, &ex)]),
            },
            Err(e) => json!(["reject", id, self.devaluate_error(&e, &ex)]),
        };
        self.send(&msg);
        ex.sent();
        if auto_release {
            let _ = self.release_export(id, 1);
        }
        self.lock().resolving -= 1;
        self.settled.notify_waiters();
    }

    /// Serializes a result for `resolve`. A result that is the peer's own object is sent back
    /// as a new export that forwards to it: the JavaScript client cannot settle a promise to
    /// `["import", id]` of its own export.
    fn devaluate_result(&self, v: Value, ex: &SendExporter<'_>) -> Result<Json, RpcError> {
        if let Value::Stub(s) = &v {
            if s.hook.import_id(self).is_some() {
                let hook: HookRef = Arc::new(PayloadHook(v));
                return Ok(json!(["export", self.export_stub(hook)?]));
            }
        }
        devaluate(&v, ex)
    }

    fn devaluate_error(&self, e: &RpcError, ex: &SendExporter<'_>) -> Json {
        devaluate(e.value(), ex).unwrap_or_else(|_| {
            devaluate(e.value(), &NoSession(self.limits.clone()))
                .unwrap_or_else(|_| json!(["error", "Error", e.message()]))
        })
    }

    /// Sends a call (or, without `args`, a property read) on the peer's export `target`.
    fn send_call(&self, target: i64, path: &[PathKey], args: Option<Vec<Value>>) -> HookRef {
        let mut expr = vec![
            json!("pipeline"),
            json!(target),
            Json::Array(path.iter().map(PathKey::to_json).collect()),
        ];
        let ex = SendExporter::new(self);
        if let Some(args) = &args {
            match devaluate_args(args, &ex) {
                Ok(a) => expr.push(a),
                Err(e) => return error_hook(e),
            }
        }
        let hook = self.push_expression(Json::Array(expr), "push", true, 1);
        ex.sent();
        // The arguments may hold our imports that the push refers to: they are released only
        // after the push that uses them has been sent.
        drop(args);
        hook
    }

    fn push_expression(
        &self,
        expr: Json,
        tag: &str,
        pull_needed: bool,
        remote_refcount: u64,
    ) -> HookRef {
        let Some(me) = self.me.upgrade() else {
            return error_hook(closed_error());
        };
        let mut st = self.lock();
        if let Some(e) = &st.broken {
            return error_hook(e.clone());
        }
        let id = st.next_import;
        st.next_import += 1;
        let entry = ImportEntry::new(&me, id, true, remote_refcount, !pull_needed);
        st.imports.insert(id, Arc::downgrade(&entry));
        self.send_locked(&st, &json!([tag, expr]));
        entry
    }

    /// Aborts the session. Pending imports fail with `reason`; exports are dropped.
    fn abort(&self, reason: RpcError, send: bool) {
        self.abort_as(reason, send, Refusal::Aborted);
    }

    /// Aborts the session, telling the peer `reason` (with an `abort` message when `send`) and
    /// closing the connection with `refusal`'s close code.
    fn abort_as(&self, reason: RpcError, send: bool, refusal: Refusal) {
        let (exports, imports, callbacks, pipes) = {
            let mut st = self.lock();
            if st.broken.is_some() {
                return;
            }
            if send {
                let body = devaluate(reason.value(), &NoSession(self.limits.clone()))
                    .unwrap_or_else(|_| json!(["error", "Error", reason.message()]));
                self.send_text_locked(&st, &json!(["abort", body]), true);
            }
            self.send_close(refusal.close_code(), reason.message());
            st.broken = Some(reason.clone());
            if send || refusal != Refusal::Aborted {
                st.refusal = Some(refusal);
            }
            st.peer_entries = 0;
            let pipes = std::mem::take(&mut st.peer_pipes);
            (
                std::mem::take(&mut st.exports),
                std::mem::take(&mut st.imports),
                std::mem::take(&mut st.on_broken),
                pipes,
            )
        };
        for entry in imports.values().filter_map(Weak::upgrade) {
            entry.abort(&reason);
        }
        drop(exports);
        for pipe in pipes {
            pipe.terminate(reason.clone());
        }
        for cb in callbacks {
            cb(reason.clone());
        }
        self.settled.notify_waiters();
    }

    /// Starts a pipe: the peer gets a writable end, and `stream`'s chunks are written to it.
    fn start_pipe(&self, stream: ReadableStream) -> Result<i64, RpcError> {
        let Some(me) = self.me.upgrade() else {
            return Err(closed_error());
        };
        let (id, entry) = {
            let mut st = self.lock();
            if let Some(e) = &st.broken {
                return Err(e.clone());
            }
            let id = st.next_import;
            st.next_import += 1;
            let entry = ImportEntry::new(&me, id, false, 1, false);
            st.imports.insert(id, Arc::downgrade(&entry));
            self.send_locked(&st, &json!(["pipe"]));
            (id, entry)
        };
        rt::spawn(pump_pipe(me, id, entry, stream));
        Ok(id)
    }

    /// Sends one `["stream", ...]` write or close to the peer's pipe `pipe_id` and returns the
    /// acknowledgement.
    fn send_stream(&self, pipe_id: i64, method: &str, args: Vec<Value>) -> HookRef {
        let ex = SendExporter::new(self);
        let json_args = match devaluate_args(&args, &ex) {
            Ok(a) => a,
            Err(e) => return error_hook(e),
        };
        let expr = json!(["pipeline", pipe_id, [method], json_args]);
        let hook = self.push_expression(expr, "stream", false, 0);
        ex.sent();
        drop(args);
        hook
    }
}

async fn pump_pipe(
    session: Arc<SessionInner>,
    pipe_id: i64,
    entry: Arc<ImportEntry>,
    stream: ReadableStream,
) {
    const WINDOW: usize = 16;
    let mut in_flight = std::collections::VecDeque::new();
    loop {
        match stream.next().await {
            Some(Ok(chunk)) => {
                let ack = session.send_stream(pipe_id, "write", vec![chunk]);
                in_flight.push_back(ack.pull());
                if in_flight.len() >= WINDOW {
                    if let Some(oldest) = in_flight.pop_front() {
                        if oldest.await.is_err() {
                            return;
                        }
                    }
                }
            }
            Some(Err(e)) => {
                let _ = session.send_stream(pipe_id, "abort", vec![e.into_value()]);
                return;
            }
            None => break,
        }
    }
    for ack in in_flight {
        if ack.await.is_err() {
            return;
        }
    }
    let _ = session
        .send_stream(pipe_id, "close", Vec::new())
        .pull()
        .await;
    drop(entry);
}

fn devaluate_args(args: &[Value], ex: &dyn Exporter) -> Result<Json, RpcError> {
    let items = args
        .iter()
        .map(|a| devaluate(a, ex))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json::Array(items))
}

fn closed_error() -> RpcError {
    RpcError::error("RPC session is closed.")
}

/// The exporter for one outgoing message: promises it exports start resolving only after
/// the message that introduces them has been sent (else their `resolve` could overtake it).
struct SendExporter<'a> {
    session: &'a SessionInner,
    promises: std::cell::RefCell<Vec<i64>>,
}

impl<'a> SendExporter<'a> {
    fn new(session: &'a SessionInner) -> Self {
        SendExporter {
            session,
            promises: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Starts resolving the promises this message exported; call after sending it.
    fn sent(self) {
        for id in self.promises.take() {
            if let Err(e) = self.session.ensure_resolving(id) {
                tracing::debug!("capnweb: promise export {id} vanished before it resolved: {e}");
            }
        }
    }
}

impl Exporter for SendExporter<'_> {
    fn export_stub(&self, hook: HookRef) -> Result<i64, RpcError> {
        self.session.export_stub(hook)
    }
    fn export_promise(&self, hook: HookRef) -> Result<i64, RpcError> {
        let id = self.session.export_stub(hook)?;
        self.promises.borrow_mut().push(id);
        Ok(id)
    }
    fn import_id_of(&self, hook: &HookRef) -> Option<i64> {
        hook.import_id(self.session)
    }
    fn create_pipe(&self, stream: ReadableStream) -> Result<i64, RpcError> {
        self.session.start_pipe(stream)
    }
}

impl Exporter for SessionInner {
    fn export_stub(&self, hook: HookRef) -> Result<i64, RpcError> {
        let mut st = self.lock();
        if let Some(e) = &st.broken {
            return Err(e.clone());
        }
        let id = st.next_export;
        st.next_export -= 1;
        st.exports.insert(
            id,
            Export {
                hook,
                refcount: 1,
                resolving: false,
                auto_release: false,
                pipe: None,
                held: Charge::none(),
            },
        );
        Ok(id)
    }

    fn export_promise(&self, hook: HookRef) -> Result<i64, RpcError> {
        let id = self.export_stub(hook)?;
        self.ensure_resolving(id)?;
        Ok(id)
    }

    fn import_id_of(&self, hook: &HookRef) -> Option<i64> {
        hook.import_id(self)
    }

    fn create_pipe(&self, stream: ReadableStream) -> Result<i64, RpcError> {
        self.start_pipe(stream)
    }
}

impl Importer for SessionInner {
    fn get_export(&self, id: i64) -> Option<HookRef> {
        self.lock().exports.get(&id).map(|e| e.hook.clone())
    }

    fn import_stub(&self, id: i64) -> Result<HookRef, RpcError> {
        let me = self.me.upgrade().ok_or_else(closed_error)?;
        let mut st = self.lock();
        if let Some(e) = &st.broken {
            return Err(e.clone());
        }
        if let Some(existing) = st.imports.get(&id).and_then(Weak::upgrade) {
            // The peer introduced the same export again: it will expect one more release.
            existing.lock().remote_refcount += 1;
            return Ok(existing);
        }
        let entry = ImportEntry::new(&me, id, false, 1, false);
        st.imports.insert(id, Arc::downgrade(&entry));
        Ok(entry)
    }

    fn import_promise(&self, id: i64) -> Result<HookRef, RpcError> {
        let me = self.me.upgrade().ok_or_else(closed_error)?;
        let mut st = self.lock();
        if let Some(e) = &st.broken {
            return Err(e.clone());
        }
        if st.imports.get(&id).is_some_and(|w| w.strong_count() > 0) {
            return Ok(error_hook(RpcError::error(
                "Bug in RPC system: The peer sent a promise reusing an existing export ID.",
            )));
        }
        let entry = ImportEntry::new(&me, id, true, 1, true);
        st.imports.insert(id, Arc::downgrade(&entry));
        Ok(entry)
    }

    fn take_pipe_readable(&self, id: i64) -> Result<ReadableStream, RpcError> {
        let mut st = self.lock();
        st.exports
            .get_mut(&id)
            .and_then(|e| e.pipe.take())
            .ok_or_else(|| {
                RpcError::error(format!(
                    "Export {id} is not a pipe or its readable end was already consumed."
                ))
            })
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }
}

struct ImportState {
    remote_refcount: u64,
    resolution: Option<HookRef>,
    pull_sent: bool,
    waiters: Vec<oneshot::Sender<()>>,
    on_broken: Vec<Box<dyn FnOnce(RpcError) + Send>>,
}

/// An entry of the import table: the peer's object (or promise) as seen from here.
pub(crate) struct ImportEntry {
    session: Weak<SessionInner>,
    id: i64,
    promise: bool,
    st: Mutex<ImportState>,
}

impl ImportEntry {
    fn new(
        session: &Arc<SessionInner>,
        id: i64,
        promise: bool,
        remote_refcount: u64,
        pull_sent: bool,
    ) -> Arc<ImportEntry> {
        Arc::new(ImportEntry {
            session: Arc::downgrade(session),
            id,
            promise,
            st: Mutex::new(ImportState {
                remote_refcount,
                resolution: None,
                pull_sent,
                waiters: Vec::new(),
                on_broken: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ImportState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn resolution(&self) -> Option<HookRef> {
        self.lock().resolution.clone()
    }

    fn resolve(&self, hook: HookRef) {
        let (refcount, waiters, callbacks) = {
            let mut st = self.lock();
            if st.resolution.is_some() {
                return;
            }
            st.resolution = Some(hook.clone());
            (
                std::mem::take(&mut st.remote_refcount),
                std::mem::take(&mut st.waiters),
                std::mem::take(&mut st.on_broken),
            )
        };
        for cb in callbacks {
            hook.on_broken(cb);
        }
        if let Some(session) = self.session.upgrade() {
            let mut st = session.lock();
            if refcount > 0 {
                session.send_locked(&st, &json!(["release", self.id, refcount]));
            }
            if st
                .imports
                .get(&self.id)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
            {
                st.imports.remove(&self.id);
            }
        }
        for w in waiters {
            let _ = w.send(());
        }
    }

    fn abort(&self, reason: &RpcError) {
        let (waiters, callbacks) = {
            let mut st = self.lock();
            st.remote_refcount = 0;
            if st.resolution.is_some() {
                return;
            }
            st.resolution = Some(error_hook(reason.clone()));
            (
                std::mem::take(&mut st.waiters),
                std::mem::take(&mut st.on_broken),
            )
        };
        for w in waiters {
            let _ = w.send(());
        }
        for cb in callbacks {
            cb(reason.clone());
        }
    }
}

impl Drop for ImportEntry {
    fn drop(&mut self) {
        let refcount = std::mem::take(&mut self.lock().remote_refcount);
        let Some(session) = self.session.upgrade() else {
            return;
        };
        let mut st = session.lock();
        if refcount > 0 && self.id != 0 {
            session.send_locked(&st, &json!(["release", self.id, refcount]));
        }
        if st
            .imports
            .get(&self.id)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
        {
            st.imports.remove(&self.id);
        }
    }
}

impl Hook for ImportEntry {
    fn call(self: Arc<Self>, path: &[PathKey], args: Vec<Value>) -> HookRef {
        if let Some(r) = self.resolution() {
            return r.call(path, args);
        }
        match self.session.upgrade() {
            Some(s) => s.send_call(self.id, path, Some(args)),
            None => error_hook(closed_error()),
        }
    }

    fn get(self: Arc<Self>, path: &[PathKey]) -> HookRef {
        if let Some(r) = self.resolution() {
            return r.get(path);
        }
        if path.is_empty() && self.promise {
            return self;
        }
        match self.session.upgrade() {
            Some(s) => s.send_call(self.id, path, None),
            None => error_hook(closed_error()),
        }
    }

    fn map(
        self: Arc<Self>,
        path: &[PathKey],
        captures: Vec<HookRef>,
        instructions: Arc<Vec<Json>>,
    ) -> HookRef {
        if let Some(r) = self.resolution() {
            return r.map(path, captures, instructions);
        }
        let Some(session) = self.session.upgrade() else {
            return error_hook(closed_error());
        };
        let mut caps = Vec::with_capacity(captures.len());
        for cap in captures {
            match cap.import_id(&session) {
                Some(id) => caps.push(json!(["import", id])),
                None => match session.export_stub(cap) {
                    Ok(id) => caps.push(json!(["export", id])),
                    Err(e) => return error_hook(e),
                },
            }
        }
        let expr = json!([
            "remap",
            self.id,
            Json::Array(path.iter().map(PathKey::to_json).collect()),
            caps,
            instructions.as_ref().clone()
        ]);
        session.push_expression(expr, "push", true, 1)
    }

    /// Registers the wait and sends `pull` now, not when the future is first polled: results
    /// asked for in one turn (JavaScript's `Promise.all`, whose `then` sends the pull) go out
    /// together, so none misses an HTTP batch cut at the end of the turn.
    fn pull(self: Arc<Self>) -> BoxFuture<'static, Result<Value, RpcError>> {
        let rx = {
            let mut st = self.lock();
            if let Some(r) = st.resolution.clone() {
                drop(st);
                return r.pull();
            }
            if !self.promise {
                return Box::pin(async {
                    Err(RpcError::error(
                        "Can't pull this hook because it's not a promise hook.",
                    ))
                });
            }
            let (tx, rx) = oneshot::channel();
            st.waiters.push(tx);
            let send_pull = !st.pull_sent;
            st.pull_sent = true;
            drop(st);
            if send_pull {
                match self.session.upgrade() {
                    Some(s) => s.send(&json!(["pull", self.id])),
                    None => return Box::pin(async { Err(closed_error()) }),
                }
            }
            rx
        };
        Box::pin(async move {
            let _ = rx.await;
            match self.resolution() {
                Some(r) => r.pull().await,
                None => Err(closed_error()),
            }
        })
    }

    fn import_id(&self, session: &SessionInner) -> Option<i64> {
        if std::ptr::eq(self.session.as_ptr(), session) && self.lock().resolution.is_none() {
            Some(self.id)
        } else {
            None
        }
    }

    fn on_broken(&self, callback: Box<dyn FnOnce(RpcError) + Send>) {
        if let Some(s) = self.session.upgrade() {
            let broken = s.lock().broken.clone();
            if let Some(e) = broken {
                callback(e);
                return;
            }
        }
        let mut st = self.lock();
        if let Some(r) = st.resolution.clone() {
            drop(st);
            r.on_broken(callback);
            return;
        }
        st.on_broken.push(callback);
    }
}

/// The writable end of a pipe the peer opened with `["pipe"]`: its `write`, `close` and
/// `abort` calls feed the pipe's [`ReadableStream`]. Written chunks are charged to the
/// session's buffer budget until they are read; a write completes when the reader has room.
struct PipeWriterHook {
    sender: Mutex<Option<StreamSender>>,
    session: Weak<SessionInner>,
}

impl Hook for PipeWriterHook {
    fn call(self: Arc<Self>, path: &[PathKey], mut args: Vec<Value>) -> HookRef {
        let method = match path {
            [PathKey::Name(m)] => m.as_str(),
            _ => {
                return error_hook(RpcError::error(
                    "WritableStream stub only supports direct method calls",
                ))
            }
        };
        let mut guard = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        match method {
            "write" => {
                let Some(sender) = guard.clone() else {
                    return error_hook(RpcError::type_error("WritableStream is closed"));
                };
                drop(guard);
                let chunk = if args.is_empty() {
                    Value::Undefined
                } else {
                    args.swap_remove(0)
                };
                let Some(session) = self.session.upgrade() else {
                    return error_hook(closed_error());
                };
                match sender.write_charged(chunk, &session.account) {
                    Ok(room) => crate::hook::PromiseHook::from_future(async move {
                        match room.await {
                            Ok(()) => value_hook(Value::Undefined),
                            Err(e) => error_hook(e),
                        }
                    }),
                    Err(WriteError::Canceled) => {
                        error_hook(RpcError::error("ReadableStream was canceled by its reader"))
                    }
                    Err(WriteError::Limit(e)) => {
                        let err = e.to_rpc_error();
                        session.refuse(e);
                        error_hook(err)
                    }
                }
            }
            "close" => {
                guard.take();
                Arc::new(PayloadHook(Value::Undefined))
            }
            "abort" => {
                let sender = guard.take();
                drop(guard);
                let reason = args.into_iter().next().unwrap_or_default();
                crate::hook::PromiseHook::from_future(async move {
                    if let Some(s) = sender {
                        s.abort(RpcError::from_value(reason)).await;
                    }
                    value_hook(Value::Undefined)
                })
            }
            other => error_hook(RpcError::error(format!(
                "Unknown WritableStream method: {other}"
            ))),
        }
    }
    fn get(self: Arc<Self>, _: &[PathKey]) -> HookRef {
        error_hook(RpcError::error(
            "Cannot access properties on a WritableStream stub",
        ))
    }
    fn map(self: Arc<Self>, _: &[PathKey], _: Vec<HookRef>, _: Arc<Vec<Json>>) -> HookRef {
        error_hook(RpcError::error("Cannot use map() on a WritableStream"))
    }
    fn pull(self: Arc<Self>) -> BoxFuture<'static, Result<Value, RpcError>> {
        Box::pin(async { Err(RpcError::error("Cannot pull a WritableStream stub")) })
    }
}

/// Why handling a message failed: a limit of the table, or any other error.
enum Fail {
    Limit(LimitExceeded),
    Error(RpcError),
}

impl From<RpcError> for Fail {
    fn from(e: RpcError) -> Self {
        Fail::Error(e)
    }
}
