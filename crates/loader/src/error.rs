//! [`LoaderError`]: why a function could not be made ready.

use capnweb::RpcError;

use crate::code::CodeError;

/// Why a function could not be loaded. Reaches the caller's first call as a rejected call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LoaderError {
    /// `get_code` failed.
    #[error("could not get the code of function '{id}': {message}")]
    GetCode {
        /// The function id.
        id: String,
        /// What `get_code` said.
        message: String,
    },
    /// The code is not valid.
    #[error("invalid code for function '{id}': {error}")]
    Code {
        /// The function id.
        id: String,
        /// What is wrong.
        error: CodeError,
    },
    /// The isolate could not be built (a module failed to load, ...).
    #[error("function '{id}' failed to load: {error}")]
    Load {
        /// The function id.
        id: String,
        /// Why.
        error: isolate::LoadError,
    },
    /// The child was evicted: its parent was retired (redeployed, rolled back, deleted), or it
    /// was the least recently used past its parent's cap on resident children. A `load()`
    /// child cannot come back; a `get()` child comes back on the next call unless its parent
    /// was retired. Reaches JavaScript as an `IsolateEvictedError`.
    #[error("isolate '{id}' was evicted")]
    Evicted {
        /// The child's isolate id.
        id: String,
    },
    /// The children of one parent already had their most calls (and loads) in flight.
    /// Reaches JavaScript as a `TooManyCallsError`.
    #[error("too many calls in flight into the code '{parent}' loaded: at most {max} at once")]
    TooManyCalls {
        /// The parent.
        parent: String,
        /// The cap.
        max: usize,
    },
}

impl LoaderError {
    /// The error as a rejected call sees it.
    pub fn to_rpc_error(&self) -> RpcError {
        match self {
            LoaderError::Load {
                error: isolate::LoadError::ResourceLimit(m),
                ..
            } => isolate::resource_limit_error(m.clone()),
            LoaderError::Evicted { id } => isolate::evicted_error(id),
            LoaderError::TooManyCalls { .. } => {
                RpcError::new(isolate::TOO_MANY_CALLS_ERROR, self.to_string())
            }
            other => RpcError::error(other.to_string()),
        }
    }
}
