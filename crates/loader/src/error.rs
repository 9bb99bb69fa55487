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
}

impl LoaderError {
    /// The error as a rejected call sees it.
    pub fn to_rpc_error(&self) -> RpcError {
        match self {
            LoaderError::Load {
                error: isolate::LoadError::ResourceLimit(m),
                ..
            } => isolate::resource_limit_error(m.clone()),
            other => RpcError::error(other.to_string()),
        }
    }
}
