//! Errors: why an isolate could not be built ([`LoadError`]) and the runtime errors a caller
//! sees as rejected calls.

use capnweb::RpcError;

/// Why an isolate could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The main module is not in the module map.
    #[error("main module '{0}' is not in the module map")]
    MainModuleMissing(String),
    /// A module failed to resolve, parse or evaluate: the message names the module (and the
    /// line, when QuickJS gives one).
    #[error("{0}")]
    Module(String),
    /// The env could not be handed to JavaScript.
    #[error("invalid env: {0}")]
    Env(String),
    /// A resource limit was exceeded while evaluating the modules.
    #[error("{0}")]
    ResourceLimit(String),
    /// The JavaScript engine could not be started.
    #[error("isolate runtime: {0}")]
    Runtime(String),
}

impl LoadError {
    /// The error as a rejected call sees it.
    pub fn to_rpc_error(&self) -> RpcError {
        match self {
            LoadError::ResourceLimit(m) => resource_limit_error(m.clone()),
            other => RpcError::new("Error", other.to_string()),
        }
    }
}

/// The name a call rejected by a broken limit carries.
pub const RESOURCE_LIMIT_ERROR: &str = "ResourceLimitError";

/// A `ResourceLimitError` with `message`.
pub fn resource_limit_error(message: impl Into<String>) -> RpcError {
    RpcError::new(RESOURCE_LIMIT_ERROR, message)
}

/// The error a call gets when its isolate was discarded because something went wrong inside
/// the host (a panic on its JavaScript thread), not because of anything the function did
/// that it could be told about. Named `Error`, with a message that starts "internal error",
/// as workerd words it.
pub fn internal_error(message: impl Into<String>) -> RpcError {
    RpcError::error(message)
}
