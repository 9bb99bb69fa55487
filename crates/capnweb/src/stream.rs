//! Streams: a [`ReadableStream`] of chunks that arrive over time. Sent over a session it becomes
//! a capnweb pipe (`["pipe"]`, then `["stream", ...write...]` messages, then `close`); received,
//! the pipe's chunks are read from the stream here.
//!
//! Backpressure: a write is queued at once and completes when the reader has room (the queue
//! holds at most [`STREAM_BUFFER_CHUNKS`] chunks and [`STREAM_BUFFER_BYTES`] bytes, this chunk
//! included) or has read it. A peer's writes to a pipe are charged to its session's buffer
//! budget from the moment they arrive until they are read, so a peer that writes without waiting
//! for its writes to complete runs into that budget instead of the server's memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::budget::{Account, Charge};
use crate::limits::LimitExceeded;
use crate::{RpcError, Value};

/// How many chunks may wait unread in a stream before a write waits.
pub const STREAM_BUFFER_CHUNKS: usize = 16;

/// How many bytes may wait unread in a stream before a write waits (a single larger chunk is
/// let through when the stream is otherwise empty).
pub const STREAM_BUFFER_BYTES: usize = 1024 * 1024;

struct Chunk {
    value: Result<Value, RpcError>,
    bytes: usize,
    charge: Charge,
}

struct State {
    items: VecDeque<Chunk>,
    bytes: usize,
    pushed: u64,
    popped: u64,
    senders: usize,
    reader_alive: bool,
    /// Ended from outside (its session went away): nothing more is queued.
    terminated: bool,
}

struct Shared {
    st: Mutex<State>,
    readable: Notify,
    room: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new(senders: usize) -> Arc<Shared> {
        Arc::new(Shared {
            st: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                pushed: 0,
                popped: 0,
                senders,
                reader_alive: true,
                terminated: false,
            }),
            readable: Notify::new(),
            room: Notify::new(),
        })
    }

    /// Queues a chunk; its sequence number, or `None` when the reader is gone.
    fn push(&self, value: Result<Value, RpcError>, bytes: usize, charge: Charge) -> Option<u64> {
        let seq = {
            let mut st = self.lock();
            if !st.reader_alive || st.terminated {
                return None;
            }
            st.pushed += 1;
            st.bytes += bytes;
            st.items.push_back(Chunk {
                value,
                bytes,
                charge,
            });
            st.pushed
        };
        self.readable.notify_waiters();
        Some(seq)
    }

    /// Waits until chunk `seq` is read or the queue has room with it in.
    async fn room_for(&self, seq: u64) -> Result<(), RpcError> {
        loop {
            let notified = self.room.notified();
            {
                let st = self.lock();
                if !st.reader_alive {
                    return Err(canceled());
                }
                let queued = usize::try_from(st.pushed - st.popped).unwrap_or(usize::MAX);
                if st.popped >= seq
                    || (queued <= STREAM_BUFFER_CHUNKS && st.bytes <= STREAM_BUFFER_BYTES)
                    || queued <= 1
                {
                    return Ok(());
                }
            }
            notified.await;
        }
    }
}

fn canceled() -> RpcError {
    RpcError::error("ReadableStream was canceled by its reader")
}

/// Marks the reader gone when the last [`ReadableStream`] clone is dropped.
struct ReaderGuard(Arc<Shared>);

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        let dropped = {
            let mut st = self.0.lock();
            st.reader_alive = false;
            st.bytes = 0;
            std::mem::take(&mut st.items)
        };
        drop(dropped);
        self.0.room.notify_waiters();
    }
}

/// A stream of values (usually [`Value::Bytes`] chunks). Clones share one reader: each chunk
/// is read once.
#[derive(Clone)]
pub struct ReadableStream {
    shared: Arc<Shared>,
    _reader: Arc<ReaderGuard>,
}

impl std::fmt::Debug for ReadableStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadableStream")
    }
}

/// The writing end of a [`ReadableStream`]. The stream ends when every sender is dropped.
pub struct StreamSender {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StreamSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamSender")
    }
}

impl Clone for StreamSender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        StreamSender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        let last = {
            let mut st = self.shared.lock();
            st.senders -= 1;
            st.senders == 0
        };
        if last {
            self.shared.readable.notify_waiters();
        }
    }
}

impl StreamSender {
    /// Writes a chunk and waits until the reader has room for it (see the module docs). Fails
    /// when the reader is gone.
    pub async fn write(&self, chunk: Value) -> Result<(), RpcError> {
        let bytes = chunk.approx_size();
        let seq = self
            .shared
            .push(Ok(chunk), bytes, Charge::none())
            .ok_or_else(canceled)?;
        self.shared.room_for(seq).await
    }

    /// Queues a chunk the peer wrote, charged to `account` until it is read; returns a future
    /// that completes when the reader has room for it. Fails at once when the charge would go
    /// past the session's buffer limit or the shared budget.
    pub(crate) fn write_charged(
        &self,
        chunk: Value,
        account: &Arc<Account>,
    ) -> Result<impl std::future::Future<Output = Result<(), RpcError>> + Send + 'static, WriteError>
    {
        let bytes = chunk.approx_size();
        let charge = account
            .try_charge(bytes, "a stream chunk nobody has read")
            .map_err(WriteError::Limit)?;
        let seq = self
            .shared
            .push(Ok(chunk), bytes, charge)
            .ok_or(WriteError::Canceled)?;
        let shared = self.shared.clone();
        Ok(async move { shared.room_for(seq).await })
    }

    /// Ends the stream with an error the reader will see.
    pub async fn abort(&self, err: RpcError) {
        self.shared.push(Err(err), 0, Charge::none());
    }

    /// Chunks written but not yet read.
    pub fn backlog(&self) -> usize {
        self.shared.lock().items.len()
    }

    /// A handle that can end the stream but does not keep it open.
    pub(crate) fn end_handle(&self) -> StreamEnd {
        StreamEnd(Arc::downgrade(&self.shared))
    }
}

/// A handle that can end a stream without keeping it open (it is not a sender).
#[derive(Clone)]
pub(crate) struct StreamEnd(std::sync::Weak<Shared>);

impl StreamEnd {
    /// Whether the stream is still there to end.
    pub(crate) fn is_open(&self) -> bool {
        self.0.strong_count() > 0
    }

    /// Ends the stream now: what is queued (and its charges) is dropped, the reader sees
    /// `reason` next, and later writes fail. Breaks waits that could otherwise last forever,
    /// such as a blob read of a pipe whose writer is held by a call waiting on that blob.
    pub(crate) fn terminate(&self, reason: RpcError) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let dropped = {
            let mut st = shared.lock();
            if st.terminated {
                return;
            }
            st.terminated = true;
            let dropped = std::mem::take(&mut st.items);
            st.popped += dropped.len() as u64;
            st.bytes = 0;
            st.pushed += 1;
            st.items.push_back(Chunk {
                value: Err(reason),
                bytes: 0,
                charge: Charge::none(),
            });
            dropped
        };
        drop(dropped);
        shared.readable.notify_waiters();
        shared.room.notify_waiters();
    }
}

/// Why a peer's write into a pipe was not queued.
pub(crate) enum WriteError {
    /// The session's buffer limit or the shared budget.
    Limit(LimitExceeded),
    /// The reader is gone.
    Canceled,
}

impl ReadableStream {
    fn from_shared(shared: Arc<Shared>) -> ReadableStream {
        ReadableStream {
            _reader: Arc::new(ReaderGuard(shared.clone())),
            shared,
        }
    }

    /// A new stream and the sender that feeds it. Dropping every sender ends the stream.
    pub fn channel() -> (StreamSender, ReadableStream) {
        let shared = Shared::new(1);
        (
            StreamSender {
                shared: shared.clone(),
            },
            ReadableStream::from_shared(shared),
        )
    }

    /// A stream of one bytes chunk.
    pub fn from_bytes(data: Vec<u8>) -> ReadableStream {
        let shared = Shared::new(0);
        let bytes = data.len();
        shared.push(
            Ok(Value::Bytes(crate::Bytes::new(data))),
            bytes,
            Charge::none(),
        );
        ReadableStream::from_shared(shared)
    }

    /// A stream of `data` in chunks of at most `chunk_size` bytes (at least one chunk, even
    /// when `data` is empty), all queued at once: no task feeds it.
    pub fn from_bytes_chunked(data: &[u8], chunk_size: usize) -> ReadableStream {
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(chunk_size.max(1)).collect()
        };
        let shared = Shared::new(0);
        for chunk in chunks {
            shared.push(
                Ok(Value::Bytes(crate::Bytes::new(chunk.to_vec()))),
                chunk.len(),
                Charge::none(),
            );
        }
        ReadableStream::from_shared(shared)
    }

    /// The next chunk, with the charge that held it, `None` at the end.
    async fn next_charged(&self) -> Option<(Result<Value, RpcError>, Charge)> {
        loop {
            let notified = self.shared.readable.notified();
            {
                let mut st = self.shared.lock();
                if let Some(chunk) = st.items.pop_front() {
                    st.popped += 1;
                    st.bytes -= chunk.bytes;
                    drop(st);
                    self.shared.room.notify_waiters();
                    return Some((chunk.value, chunk.charge));
                }
                if st.senders == 0 || st.terminated {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The next chunk, `None` at the end.
    pub async fn next(&self) -> Option<Result<Value, RpcError>> {
        self.next_charged().await.map(|(v, _)| v)
    }

    /// Reads every chunk and concatenates them as bytes (strings count as UTF-8). The bytes
    /// read stay charged to the session that received them until this returns.
    pub async fn read_all(&self) -> Result<Vec<u8>, RpcError> {
        let mut out = Vec::new();
        let mut held = Charge::none();
        while let Some((chunk, charge)) = self.next_charged().await {
            held.absorb(charge);
            match chunk? {
                Value::Bytes(b) => out.extend_from_slice(&b.data),
                Value::String(s) => out.extend_from_slice(s.as_bytes()),
                other => {
                    return Err(RpcError::type_error(format!(
                        "stream chunk is not bytes: {:?}",
                        other.to_json()
                    )))
                }
            }
        }
        drop(held);
        Ok(out)
    }
}
