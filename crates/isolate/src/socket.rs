//! WebSockets a function accepts: the server's end of a `WebSocketPair` whose client end the
//! function returned from its own `fetch` (`new Response(null, { status: 101, webSocket })`).
//!
//! The isolate keeps one entry per open socket (see `Host`); the server holds the [`Socket`]
//! and bridges it to the real connection: it hands received messages to
//! [`Socket::deliver`] and writes what [`Outgoing::next_frame`] (from [`Socket::outgoing`])
//! gives.
//!
//! - Each received message (and the close) is its own invocation with the function's CPU
//!   limit; the invocation is made on the socket, so timers and awaits its listeners start live
//!   while the socket is open (as `background.rs` keeps work of calls made on a capability).
//! - An open socket holds the isolate (and a call through its gate, so even a gate-evicted
//!   isolate is torn down only once its sockets have closed): after a redeploy or rollback its
//!   sockets keep the old version, and the loader keeps an isolate with open sockets in its
//!   cache. A discarded isolate (a broken limit) closes its sockets with 1011 and the reason.
//! - Against a hostile peer: a message larger than [`SocketLimits::max_message_bytes`] is
//!   refused by the server (1009); past [`SocketLimits::max_inbound_messages`] or
//!   [`SocketLimits::max_inbound_bytes`] waiting for the isolate, [`Socket::deliver`] does not
//!   return, so the server stops reading (TCP pushes back on the peer).
//! - Against a hostile function: it cannot queue more than
//!   [`SocketLimits::max_outbound_bytes`] for a peer that does not read; past it the socket
//!   closes with 1008.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use tokio::sync::{mpsc, Notify};

use crate::gate::Entered;
use crate::state::Shared;

/// Limits on the WebSockets functions accept. Process-wide ([`set_socket_limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLimits {
    /// Largest message a peer may send, in bytes (default 1 MiB); larger closes with 1009.
    pub max_message_bytes: usize,
    /// Most received messages waiting for the isolate before reading pauses (default 64).
    pub max_inbound_messages: usize,
    /// Most received bytes waiting for the isolate before reading pauses (default 4 MiB).
    pub max_inbound_bytes: usize,
    /// Most bytes a function may queue for a peer (default 16 MiB); past it the socket closes
    /// with 1008.
    pub max_outbound_bytes: usize,
}

const MIB: usize = 1024 * 1024;

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            max_message_bytes: MIB,
            max_inbound_messages: 64,
            max_inbound_bytes: 4 * MIB,
            max_outbound_bytes: 16 * MIB,
        }
    }
}

static LIMITS: RwLock<Option<SocketLimits>> = RwLock::new(None);

/// Sets the limits of every WebSocket accepted from now on.
pub fn set_socket_limits(limits: SocketLimits) {
    *LIMITS.write().unwrap_or_else(|e| e.into_inner()) = Some(limits);
}

/// The limits in force.
pub fn socket_limits() -> SocketLimits {
    LIMITS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_default()
}

/// A WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketMessage {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl SocketMessage {
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        match self {
            SocketMessage::Text(t) => t.len(),
            SocketMessage::Binary(b) => b.len(),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the function sends to its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketFrame {
    /// A message.
    Message(SocketMessage),
    /// A close frame; nothing follows it.
    Close {
        /// The close code.
        code: u16,
        /// The reason (at most 123 bytes).
        reason: String,
    },
}

/// The function's side of what it queued for the peer.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    bytes: AtomicUsize,
    /// The isolate's total of bytes queued on its sockets either way (its memory counts it).
    total: Arc<AtomicUsize>,
    /// A close that jumps the queue (the function queued too much).
    abort: Mutex<Option<(u16, String)>>,
    notify: Notify,
}

/// Received messages waiting for the isolate.
#[derive(Debug, Default)]
struct Inbound {
    messages: AtomicUsize,
    bytes: AtomicUsize,
    notify: Notify,
    /// The isolate's total of bytes queued on its sockets either way.
    total: Arc<AtomicUsize>,
}

impl Inbound {
    fn done(&self, bytes: usize) {
        self.messages.fetch_sub(1, Ordering::SeqCst);
        self.bytes.fetch_sub(bytes, Ordering::SeqCst);
        self.total.fetch_sub(bytes, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn over(&self, limits: &SocketLimits) -> bool {
        self.messages.load(Ordering::SeqCst) >= limits.max_inbound_messages
            || self.bytes.load(Ordering::SeqCst) >= limits.max_inbound_bytes
    }
}

/// What happened to a socket, as its listeners hear it.
pub(crate) enum SocketEvent {
    Message(SocketMessage),
    Close { code: u16, reason: String },
}

/// The isolate's entry for one open socket (on its thread).
pub(crate) struct SocketEntry {
    tx: mpsc::UnboundedSender<SocketFrame>,
    out: Arc<Outbound>,
    max_outbound: usize,
    /// The function closed it (or it was closed for queuing too much): nothing more is sent.
    closing: bool,
}

/// Why [`SocketEntry::send`] sent nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendRefused {
    /// The socket is closing.
    Closing,
    /// The queue went over the limit: the socket is now closing with 1008.
    Overflow,
}

impl SocketEntry {
    /// Queues a message for the peer.
    pub(crate) fn send(&mut self, msg: SocketMessage) -> Result<(), SendRefused> {
        if self.closing {
            return Err(SendRefused::Closing);
        }
        let len = msg.len();
        let queued = self.out.bytes.fetch_add(len, Ordering::SeqCst) + len;
        if queued > self.max_outbound {
            self.out.bytes.fetch_sub(len, Ordering::SeqCst);
            self.closing = true;
            *self.out.abort.lock().unwrap_or_else(|e| e.into_inner()) = Some((
                1008,
                format!(
                    "the function queued more than {} bytes for this WebSocket",
                    self.max_outbound
                ),
            ));
            self.out.notify.notify_one();
            return Err(SendRefused::Overflow);
        }
        if self.tx.send(SocketFrame::Message(msg)).is_err() {
            self.out.bytes.fetch_sub(len, Ordering::SeqCst);
        } else {
            self.out.total.fetch_add(len, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Queues a close frame (once).
    pub(crate) fn close(&mut self, code: u16, reason: String) {
        if self.closing {
            return;
        }
        self.closing = true;
        let _ = self.tx.send(SocketFrame::Close {
            code,
            reason: close_reason(&reason),
        });
    }

    /// Closes it at once, ahead of what is queued (the isolate is going away).
    pub(crate) fn abort(&mut self, code: u16, reason: &str) {
        self.closing = true;
        *self.out.abort.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((code, close_reason(reason)));
        self.out.notify.notify_one();
    }
}

/// A WebSocket close reason holds at most 123 bytes.
pub(crate) fn close_reason(reason: &str) -> String {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    reason[..cut].to_owned()
}

/// What the isolate hands the server for a socket it attached (until `Isolate::fetch_socket`
/// takes it).
pub(crate) struct SocketParts {
    sid: u64,
    rx: Option<mpsc::UnboundedReceiver<SocketFrame>>,
    out: Arc<Outbound>,
    closer: Closer,
}

/// Tells the isolate the socket is gone if it was dropped without [`Socket::finish`].
struct Closer {
    shared: Weak<Shared>,
    sid: u64,
    armed: AtomicBool,
}

impl Drop for Closer {
    fn drop(&mut self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            let sid = self.sid;
            shared.post(move |ctx, host| {
                host.socket_event(
                    ctx,
                    sid,
                    SocketEvent::Close {
                        code: 1006,
                        reason: String::new(),
                    },
                )
            });
        }
    }
}

/// Makes the isolate's entry for a new socket and the parts the server will hold.
pub(crate) fn attach(shared: &Arc<Shared>, sid: u64) -> (SocketEntry, SocketParts) {
    let (tx, rx) = mpsc::unbounded_channel();
    let out = Arc::new(Outbound {
        total: shared.socket_bytes.clone(),
        ..Outbound::default()
    });
    let entry = SocketEntry {
        tx,
        out: out.clone(),
        max_outbound: socket_limits().max_outbound_bytes,
        closing: false,
    };
    let parts = SocketParts {
        sid,
        rx: Some(rx),
        out,
        closer: Closer {
            shared: Arc::downgrade(shared),
            sid,
            armed: AtomicBool::new(true),
        },
    };
    (entry, parts)
}

/// The server's end of a WebSocket a function accepted. Dropping it without
/// [`Socket::finish`] tells the function the connection ended abnormally (1006).
pub struct Socket {
    shared: Arc<Shared>,
    parts: SocketParts,
    inbound: Arc<Inbound>,
    limits: SocketLimits,
    _entered: Entered,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("isolate", &self.shared.id)
            .field("sid", &self.parts.sid)
            .finish()
    }
}

impl Socket {
    pub(crate) fn new(shared: Arc<Shared>, parts: SocketParts, entered: Entered) -> Socket {
        let total = shared.socket_bytes.clone();
        Socket {
            shared,
            parts,
            inbound: Arc::new(Inbound {
                total,
                ..Inbound::default()
            }),
            limits: socket_limits(),
            _entered: entered,
        }
    }

    /// The limits this socket runs under.
    pub fn limits(&self) -> SocketLimits {
        self.limits
    }

    /// Hands a received message to the function (its own invocation). Returns once fewer
    /// than the inbound limits are waiting for the isolate, so a caller that awaits it before
    /// reading again stops reading while the function is behind.
    pub async fn deliver(&self, msg: SocketMessage) {
        let len = msg.len();
        self.inbound.messages.fetch_add(1, Ordering::SeqCst);
        self.inbound.bytes.fetch_add(len, Ordering::SeqCst);
        self.inbound.total.fetch_add(len, Ordering::SeqCst);
        let inbound = self.inbound.clone();
        let sid = self.parts.sid;
        self.shared.post(move |ctx, host| {
            host.socket_event(ctx, sid, SocketEvent::Message(msg));
            inbound.done(len);
        });
        loop {
            let notified = self.inbound.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.inbound.over(&self.limits) || self.shared.broken().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Takes the sending half: what the function sends to its peer (once; `None` after).
    pub fn outgoing(&mut self) -> Option<Outgoing> {
        let rx = self.parts.rx.take()?;
        Some(Outgoing {
            rx,
            out: self.parts.out.clone(),
        })
    }

    /// Why the isolate let go of the socket: the limit it broke, or that it was shut down.
    pub fn gone_reason(&self) -> String {
        self.shared
            .broken()
            .unwrap_or_else(|| format!("isolate '{}' was shut down", self.shared.id))
    }

    /// The connection ended (the peer's close, or the server closed it): the function's
    /// close listeners run with `code` and `reason`, and the socket is forgotten (once; a
    /// socket dropped without it closes with 1006).
    pub fn finish(&self, code: u16, reason: String) {
        if !self.parts.closer.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        let sid = self.parts.sid;
        self.shared.post(move |ctx, host| {
            host.socket_event(ctx, sid, SocketEvent::Close { code, reason })
        });
    }
}

/// What a function sends to its peer, in order (see [`Socket::outgoing`]).
#[derive(Debug)]
pub struct Outgoing {
    rx: mpsc::UnboundedReceiver<SocketFrame>,
    out: Arc<Outbound>,
}

impl Outgoing {
    /// The next frame the function sends: a close that jumped the queue first. `None` once
    /// the isolate let go of the socket without a close frame (it was torn down):
    /// [`Socket::gone_reason`] says why.
    pub async fn next_frame(&mut self) -> Option<SocketFrame> {
        loop {
            let abort = self
                .out
                .abort
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some((code, reason)) = abort {
                return Some(SocketFrame::Close { code, reason });
            }
            tokio::select! {
                biased;
                () = self.out.notify.notified() => continue,
                frame = self.rx.recv() => {
                    if let Some(SocketFrame::Message(m)) = &frame {
                        self.out.bytes.fetch_sub(m.len(), Ordering::SeqCst);
                        self.out.total.fetch_sub(m.len(), Ordering::SeqCst);
                    }
                    return frame;
                }
            }
        }
    }
}

impl Drop for Outgoing {
    /// What was never handed to the connection is no longer the isolate's either.
    fn drop(&mut self) {
        while let Ok(frame) = self.rx.try_recv() {
            if let SocketFrame::Message(m) = frame {
                self.out.bytes.fetch_sub(m.len(), Ordering::SeqCst);
                self.out.total.fetch_sub(m.len(), Ordering::SeqCst);
            }
        }
    }
}
