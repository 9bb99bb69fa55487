//! Streams: a [`ReadableStream`] of chunks that arrive over time. Sent over a session it becomes
//! a capnweb pipe (`["pipe"]`, then `["stream", ...write...]` messages, then `close`); received,
//! the pipe's chunks are read from the stream here.

use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};

use crate::{RpcError, Value};

/// How many chunks may wait unread in a stream before the writer is held back.
pub const STREAM_BUFFER_CHUNKS: usize = 16;

/// A stream of values (usually [`Value::Bytes`] chunks). Clones share one reader: each chunk
/// is read once.
#[derive(Clone)]
pub struct ReadableStream {
    rx: Arc<Mutex<mpsc::Receiver<Result<Value, RpcError>>>>,
}

impl std::fmt::Debug for ReadableStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadableStream")
    }
}

/// The writing end of a [`ReadableStream`].
#[derive(Debug, Clone)]
pub struct StreamSender {
    tx: mpsc::Sender<Result<Value, RpcError>>,
}

impl StreamSender {
    /// Writes a chunk, waiting while the reader is [`STREAM_BUFFER_CHUNKS`] behind. Fails when
    /// the reader is gone.
    pub async fn write(&self, chunk: Value) -> Result<(), RpcError> {
        self.tx
            .send(Ok(chunk))
            .await
            .map_err(|_| RpcError::error("ReadableStream was canceled by its reader"))
    }

    /// Ends the stream with an error the reader will see.
    pub async fn abort(&self, err: RpcError) {
        let _ = self.tx.send(Err(err)).await;
    }

    /// Chunks written but not yet read.
    pub fn backlog(&self) -> usize {
        STREAM_BUFFER_CHUNKS - self.tx.capacity()
    }
}

impl ReadableStream {
    /// A new stream and the sender that feeds it. Dropping every sender ends the stream.
    pub fn channel() -> (StreamSender, ReadableStream) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER_CHUNKS);
        (
            StreamSender { tx },
            ReadableStream {
                rx: Arc::new(Mutex::new(rx)),
            },
        )
    }

    /// A stream of one bytes chunk.
    pub fn from_bytes(data: Vec<u8>) -> ReadableStream {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Ok(Value::Bytes(crate::Bytes::new(data))));
        ReadableStream {
            rx: Arc::new(Mutex::new(rx)),
        }
    }

    /// A stream of `data` in chunks of at most `chunk_size` bytes (at least one chunk, even
    /// when `data` is empty), all queued at once: no task feeds it.
    pub fn from_bytes_chunked(data: &[u8], chunk_size: usize) -> ReadableStream {
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(chunk_size.max(1)).collect()
        };
        let (tx, rx) = mpsc::channel(chunks.len());
        for chunk in chunks {
            let _ = tx.try_send(Ok(Value::Bytes(crate::Bytes::new(chunk.to_vec()))));
        }
        ReadableStream {
            rx: Arc::new(Mutex::new(rx)),
        }
    }

    /// The next chunk, `None` at the end.
    pub async fn next(&self) -> Option<Result<Value, RpcError>> {
        self.rx.lock().await.recv().await
    }

    /// Reads every chunk and concatenates them as bytes (strings count as UTF-8).
    pub async fn read_all(&self) -> Result<Vec<u8>, RpcError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next().await {
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
        Ok(out)
    }
}
