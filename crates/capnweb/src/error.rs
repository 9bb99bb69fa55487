//! Errors: what a call rejects with ([`RpcError`]) and why a connection failed
//! ([`TransportError`]).

use crate::value::{ErrorValue, Value};

/// The reason an RPC call was rejected: the value the callee threw.
///
/// Almost always an error value (`Value::Error`), but JavaScript may throw anything, so any
/// [`Value`] is kept as is. A broken connection rejects every pending call with an error too.
#[derive(Debug, Clone)]
pub struct RpcError {
    value: Value,
}

impl RpcError {
    /// An error with a type name (`Error`, `TypeError`, ...) and a message.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        RpcError {
            value: Value::Error(Box::new(ErrorValue::new(name, message))),
        }
    }

    /// A plain `Error` with a message.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new("Error", message)
    }

    /// A `TypeError` with a message.
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new("TypeError", message)
    }

    /// A `RangeError` with a message.
    pub fn range_error(message: impl Into<String>) -> Self {
        Self::new("RangeError", message)
    }

    /// Wraps whatever was thrown.
    pub fn from_value(value: Value) -> Self {
        RpcError { value }
    }

    /// Adds an own property (like `error.code = "E_X"` in JavaScript). Ignored when the thrown
    /// value is not an error.
    pub fn with_prop(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        if let Value::Error(e) = &mut self.value {
            e.props.insert(key.into(), value.into());
        }
        self
    }

    /// The thrown value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The thrown value, by value.
    pub fn into_value(self) -> Value {
        self.value
    }

    /// The error's type name, or `""` when a non-error was thrown.
    pub fn name(&self) -> &str {
        match &self.value {
            Value::Error(e) => &e.name,
            _ => "",
        }
    }

    /// The error's message (or a description of the thrown value).
    pub fn message(&self) -> String {
        match &self.value {
            Value::Error(e) => e.message.clone(),
            Value::String(s) => s.clone(),
            other => format!("{:?}", other.to_json()),
        }
    }

    /// An own property of the error, if it has it.
    pub fn prop(&self, key: &str) -> Option<&Value> {
        match &self.value {
            Value::Error(e) => e.props.get(key),
            _ => None,
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Value::Error(e) => write!(f, "{}: {}", e.name, e.message),
            _ => write!(f, "thrown value: {}", self.message()),
        }
    }
}

impl std::error::Error for RpcError {}

impl From<ErrorValue> for RpcError {
    fn from(e: ErrorValue) -> Self {
        RpcError {
            value: Value::Error(Box::new(e)),
        }
    }
}

/// Why a transport could not be opened or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The WebSocket handshake or connection failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// An HTTP batch request failed.
    #[error("http batch request failed: {0}")]
    Http(String),
    /// An I/O error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame was larger than the transport accepts (close 1009).
    #[error("a message of {size} bytes is larger than the transport accepts ({max} bytes)")]
    FrameTooLarge {
        /// The frame's size, as far as it is known.
        size: usize,
        /// The transport's cap.
        max: usize,
    },
}
