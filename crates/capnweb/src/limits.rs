//! The session limits table: every limit a capnweb session enforces, its default, and how a
//! session says no when one is reached ([`Refusal`]). Transport caps (WebSocket frame and
//! message size, HTTP batch body) are derived from the table ([`Limits::max_frame_bytes`]) so
//! they never fire before it.
//!
//! | limit | default | past it |
//! |---|---|---|
//! | [`max_message_size`](Limits::max_message_size) | 32 Mi UTF-16 code units (capnweb 0.12) | `TypeError` abort, close 3000 |
//! | [`max_depth`](Limits::max_depth) | 256 (capnweb 0.12) | `TypeError` abort, close 3000 |
//! | [`max_bigint_digits`](Limits::max_bigint_digits) | 16,384 (capnweb 0.12) | `TypeError` abort, close 3000 |
//! | [`max_exports`](Limits::max_exports) | 100,000 entries | `RangeError` abort, close 3000 |
//! | [`max_calls_in_flight`](Limits::max_calls_in_flight) | 10,000 | `RangeError` abort, close 3000 |
//! | [`max_buffered_bytes`](Limits::max_buffered_bytes) | 64 MiB per session | `RangeError` abort, close 3000 |
//! | [`budget`](Limits::budget) | 512 MiB across sessions | abort, close 1013 (retry later) |
//! | [`max_sessions_per_function`](Limits::max_sessions_per_function) | 1,000 | close 1013 / batch 503 |
//! | [`max_sessions_per_address`](Limits::max_sessions_per_address) | 256 | close 1013 / batch 503 |
//! | [`idle_timeout`](Limits::idle_timeout) | 5 minutes | close 1001 |

use std::time::Duration;

use crate::budget::Budget;
use crate::RpcError;

/// Limits on what one session accepts from its peer and may hold for it. The defaults of the
/// fields capnweb 0.12 has are its `DEFAULT_LIMITS`; the rest are ours.
///
/// Cloning shares the [`budget`](Limits::budget): sessions started with clones of one `Limits`
/// count their buffered bytes against the same total.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest incoming message, in UTF-16 code units of its JSON text (JavaScript's
    /// `String.length`, as capnweb counts it). Default 32 Mi.
    pub max_message_size: usize,
    /// Deepest nesting of arrays/objects accepted (default 256).
    pub max_depth: usize,
    /// Most digits in a bigint (default 16,384).
    pub max_bigint_digits: usize,
    /// Most entries the peer may create in our export table (default 100,000).
    pub max_exports: usize,
    /// Most entries the peer may have pushed and not yet released: calls whose results it has
    /// not released, pipes and stream writes (default 10,000).
    pub max_calls_in_flight: usize,
    /// Most bytes one session may buffer: pipe and stream chunks its peer wrote that nobody has
    /// read yet, blob bodies being read, and messages queued for a peer that does not read
    /// (default 64 MiB).
    pub max_buffered_bytes: usize,
    /// Most bytes of results one session may hold for its peer: what the peer's calls
    /// returned, kept until the peer releases them (pulled or not). Counted apart from
    /// `max_buffered_bytes` (a result being sent is in both), and large enough for the
    /// largest message the peer could receive (default 128 MiB).
    pub max_held_bytes: usize,
    /// The byte budget shared by every session started with a clone of these limits (default a
    /// new budget of 512 MiB).
    pub budget: Budget,
    /// Most sessions open at once on one function (enforced by the server; default 1,000).
    pub max_sessions_per_function: usize,
    /// Most sessions open at once from one client address (enforced by the server; default 256).
    pub max_sessions_per_address: usize,
    /// How long a session may pass without a message in either direction before it is closed
    /// (close 1001); `None` never. Default 5 minutes.
    pub idle_timeout: Option<Duration>,
}

/// 1 MiB.
const MIB: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 32 * MIB,
            max_depth: 256,
            max_bigint_digits: 16_384,
            max_exports: 100_000,
            max_calls_in_flight: 10_000,
            max_buffered_bytes: 64 * MIB,
            max_held_bytes: 128 * MIB,
            budget: Budget::new(512 * MIB),
            max_sessions_per_function: 1_000,
            max_sessions_per_address: 256,
            idle_timeout: Some(Duration::from_secs(300)),
        }
    }
}

impl Limits {
    /// The largest WebSocket message (and frame) a transport should accept, in bytes: a message
    /// of [`max_message_size`](Limits::max_message_size) code units takes up to three bytes of
    /// UTF-8 per code unit, so the transport never refuses what the session would accept.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_message_size.saturating_mul(3)
    }

    /// The largest HTTP batch body, in bytes: one message of the largest size
    /// ([`max_frame_bytes`](Limits::max_frame_bytes)).
    pub fn max_batch_bytes(&self) -> usize {
        self.max_frame_bytes()
    }
}

/// How a session says no, and what the peer should do about it. One table, used by every
/// transport and by the server:
///
/// | case | WebSocket | HTTP batch | retry? |
/// |---|---|---|---|
/// | [`Aborted`](Refusal::Aborted): a limit of the table, or a protocol error | `abort` message, close 3000 | the `abort` line in a 200 | no |
/// | [`FrameTooLarge`](Refusal::FrameTooLarge): beyond the transport cap | close 1009 | 413 | no |
/// | [`Overloaded`](Refusal::Overloaded): the shared budget or a session cap | close 1013 | 503 with `Retry-After` | yes, with backoff |
/// | [`Idle`](Refusal::Idle): no message for the idle timeout | close 1001 | — | yes |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The session was aborted: a limit of the table was exceeded, or the peer broke the
    /// protocol. Retrying the same thing fails the same way.
    Aborted,
    /// A frame was larger than the transport accepts.
    FrameTooLarge,
    /// The server is over its shared budget or a session cap; try again later.
    Overloaded,
    /// The session was idle for too long.
    Idle,
}

impl Refusal {
    /// The WebSocket close code.
    pub fn close_code(self) -> u16 {
        match self {
            Refusal::Aborted => 3000,
            Refusal::FrameTooLarge => 1009,
            Refusal::Overloaded => 1013,
            Refusal::Idle => 1001,
        }
    }

    /// The HTTP status an HTTP batch answers with, when it cannot answer with messages.
    pub fn http_status(self) -> u16 {
        match self {
            Refusal::Aborted => 200,
            Refusal::FrameTooLarge => 413,
            Refusal::Overloaded => 503,
            Refusal::Idle => 408,
        }
    }

    /// Whether a client may try again (with backoff for [`Overloaded`](Refusal::Overloaded)).
    pub fn retryable(self) -> bool {
        matches!(self, Refusal::Overloaded | Refusal::Idle)
    }

    /// The refusal a WebSocket close code stands for, if it is one of the table's.
    pub fn from_close_code(code: u16) -> Option<Refusal> {
        Some(match code {
            3000 => Refusal::Aborted,
            1009 => Refusal::FrameTooLarge,
            1013 => Refusal::Overloaded,
            1001 => Refusal::Idle,
            _ => return None,
        })
    }
}

/// A limit of the table that a peer went past.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// An incoming message was longer than `max_message_size` code units.
    #[error("Incoming message exceeds maximum size of {max} UTF-16 code units.")]
    MessageSize {
        /// The limit.
        max: usize,
    },
    /// An incoming message nested deeper than `max_depth`.
    #[error("Deserialization exceeded maximum allowed message depth of {max}.")]
    Depth {
        /// The limit.
        max: usize,
    },
    /// A bigint had more than `max_bigint_digits` digits.
    #[error("Deserialized bigint exceeds maximum length of {max} digits.")]
    BigIntDigits {
        /// The limit.
        max: usize,
    },
    /// The peer created more than `max_exports` entries in our export table.
    #[error("peer exceeded the limit of {max} exports per session (max_exports)")]
    Exports {
        /// The limit.
        max: usize,
    },
    /// The peer had more than `max_calls_in_flight` pushes unreleased.
    #[error("peer exceeded the limit of {max} calls in flight per session (max_calls_in_flight)")]
    CallsInFlight {
        /// The limit.
        max: usize,
    },
    /// The session would buffer more than `max_buffered_bytes`.
    #[error(
        "session exceeded its buffer limit of {max} bytes (max_buffered_bytes): {what} of \
         {bytes} bytes with {used} already buffered"
    )]
    SessionBuffer {
        /// The limit.
        max: usize,
        /// What was being buffered.
        what: &'static str,
        /// Its size.
        bytes: usize,
        /// What the session held already.
        used: usize,
    },
    /// The session would hold more than `max_held_bytes` of results its peer has not
    /// released.
    #[error(
        "peer holds more than {max} bytes of results it has not released (max_held_bytes): a \
         result of {bytes} bytes with {used} already held"
    )]
    HeldResults {
        /// The limit.
        max: usize,
        /// The result's size.
        bytes: usize,
        /// What the session held already.
        used: usize,
    },
    /// Every session together would buffer more than the shared budget.
    #[error(
        "server is over its buffer budget of {max} bytes shared by all sessions; try again \
         later ({what} of {bytes} bytes)"
    )]
    Budget {
        /// The budget.
        max: usize,
        /// What was being buffered.
        what: &'static str,
        /// Its size.
        bytes: usize,
    },
}

impl LimitExceeded {
    /// How the session says no to this.
    pub fn refusal(&self) -> Refusal {
        match self {
            LimitExceeded::Budget { .. } => Refusal::Overloaded,
            _ => Refusal::Aborted,
        }
    }

    /// The error the peer is sent: the JavaScript implementation's type for the limits it has
    /// (`TypeError`), `RangeError` for ours.
    pub fn to_rpc_error(&self) -> RpcError {
        match self {
            LimitExceeded::MessageSize { .. }
            | LimitExceeded::Depth { .. }
            | LimitExceeded::BigIntDigits { .. } => RpcError::type_error(self.to_string()),
            _ => RpcError::range_error(self.to_string()),
        }
    }
}

/// The length of `text` in UTF-16 code units (JavaScript's `String.length`): one per UTF-8
/// leading byte, two for a four-byte sequence.
pub(crate) fn utf16_len(text: &str) -> usize {
    text.bytes()
        .map(|b| usize::from((b & 0xC0) != 0x80) + usize::from(b >= 0xF0))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_len_counts_code_units_like_javascript() {
        assert_eq!(utf16_len(""), 0);
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("é"), 1);
        assert_eq!(utf16_len("€"), 1);
        assert_eq!(utf16_len("😀"), 2);
        assert_eq!(utf16_len("a😀é€"), 5);
    }

    #[test]
    fn refusals_map_to_close_codes_and_back() {
        for r in [
            Refusal::Aborted,
            Refusal::FrameTooLarge,
            Refusal::Overloaded,
            Refusal::Idle,
        ] {
            assert_eq!(Refusal::from_close_code(r.close_code()), Some(r));
        }
        assert!(Refusal::Overloaded.retryable());
        assert!(!Refusal::Aborted.retryable());
    }

    #[test]
    fn transport_caps_never_fire_before_the_message_limit() {
        let l = Limits::default();
        // The largest message the session accepts, all three-byte characters.
        assert!(l.max_frame_bytes() >= "€".len() * l.max_message_size);
        assert!(l.max_batch_bytes() >= l.max_frame_bytes());
    }
}
