//! [`FunctionHost`]: the narrow interface the server needs from a JavaScript runtime.
//!
//! The server owns routing, storage, versions and bindings; the host owns running code. A
//! host receives a [`Function`] (one immutable version of one function, with its `env`
//! already resolved into capnweb values and stubs) and runs its handlers. Two hosts exist:
//! the Worker Loader's ([`crate::host_loader::LoaderHost`], what the binary runs) and the
//! test host ([`crate::host_canned::CannedHost`], fixed Rust behaviour for the server's own
//! tests).

use std::sync::Arc;

use capnweb::{RequestValue, ResponseValue, RpcError, Stub};
use futures::future::BoxFuture;

use crate::manifest::{Bundle, MaxLimits};

/// What a host call returns.
pub type HostFuture<T> = BoxFuture<'static, Result<T, HostError>>;

/// One version of one function, ready to run: immutable, shared by every call that uses it.
///
/// A call holds its `Arc<Function>` from start to end, so a deploy that lands mid-call never
/// mixes versions inside one call.
#[derive(Debug)]
pub struct Function {
    /// The function id.
    pub id: String,
    /// The version number (from the code store; never reused for this id).
    pub version: u64,
    /// The bundle.
    pub bundle: Arc<Bundle>,
    /// The `env` object the code sees: `env` vars as JSON values, bindings as capnweb stubs
    /// (KV, blob, service, loader). The host hands it to the code as it is.
    pub env: capnweb::Object,
}

/// Runs function code. Implementations must be cheap to call concurrently; they may cache
/// loaded code keyed by `(id, version)`, which never changes meaning.
pub trait FunctionHost: Send + Sync + 'static {
    /// Validates and test-loads a bundle before it goes live (syntax errors, a missing main
    /// module export, modules that fail to evaluate). An `Err` refuses the deploy; nothing is
    /// stored. Should return [`HostError::InvalidCode`] for faults in the code itself.
    fn check(&self, id: &str, bundle: Arc<Bundle>) -> HostFuture<()>;

    /// Calls the function's `fetch` handler. The request URL has the `/<id>` prefix already
    /// removed.
    fn fetch(&self, function: Arc<Function>, request: RequestValue) -> HostFuture<ResponseValue>;

    /// Calls the function's `fetch` handler with a WebSocket upgrade request: when the
    /// handler answers `new Response(null, { status: 101, webSocket })`, the server's end of
    /// the socket comes with the response. Default: a plain fetch, never a socket.
    fn fetch_socket(
        &self,
        function: Arc<Function>,
        request: RequestValue,
    ) -> HostFuture<(ResponseValue, Option<isolate::Socket>)> {
        let fetch = self.fetch(function, request);
        Box::pin(async move { Ok((fetch.await?, None)) })
    }

    /// The main capability of one `/_rpc` session opened by `request` (bodyless): what the
    /// function's `authenticate` hook returns (or the `Response` it refuses with; if it
    /// throws, [`HostError::Thrown`]), else its RPC target with `ctx.request` set. Default: the
    /// RPC target.
    fn rpc_session(
        &self,
        function: Arc<Function>,
        request: RequestValue,
    ) -> HostFuture<isolate::RpcSession> {
        let _ = request;
        let target = self.rpc_target(function, None);
        Box::pin(async move { Ok(isolate::RpcSession::Main(target.await?)) })
    }

    /// The function's RPC target as a capnweb stub: the main capability of `/_rpc/<id>`
    /// sessions and the target of `X-RPC-Method` calls. `entrypoint` names a
    /// `WorkerEntrypoint` class (service bindings may ask for one); `None` is the default
    /// (an instance of `default.rpc` when the default export has one, else the default export).
    fn rpc_target(&self, function: Arc<Function>, entrypoint: Option<String>) -> HostFuture<Stub>;

    /// How many isolates (or other loaded instances) the host holds now, for the node
    /// registry. Hosts that load nothing report 0.
    fn resident_isolates(&self) -> usize {
        0
    }

    /// Tells the host which version of `id` is now live (`None`: the function was deleted), so
    /// it may drop what it cached for other versions, and stop the code they loaded (their
    /// children). Calls still running keep their version.
    fn retire(&self, id: &str, live_version: Option<u64>) {
        let _ = (id, live_version);
    }

    /// Whether an `X-RPC-Method: method` request to `function` should go to its fetch handler
    /// instead of its RPC target, because the function has no RPC surface for it (a plain
    /// `export default { fetch }` that reads the header itself). Default: never.
    fn rpc_header_goes_to_fetch(
        &self,
        function: Arc<Function>,
        method: String,
    ) -> HostFuture<bool> {
        let _ = (function, method);
        Box::pin(async { Ok(false) })
    }

    /// The `loader` binding of version `version` of function `id` (`{ "type": "loader" }` in
    /// its bindings), or `None` when this host cannot load code dynamically (the binding then
    /// refuses calls). What the version loads through it are its children: they run with at
    /// most the version's limits, and [`FunctionHost::retire`] stops them with it.
    fn loader_binding(&self, id: &str, version: u64, bundle: &Bundle) -> Option<Stub> {
        let _ = (id, version, bundle);
        None
    }

    /// The largest limits a bundle may declare on this host; a deploy above them is refused.
    fn max_limits(&self) -> MaxLimits {
        MaxLimits::default()
    }

    /// Drops everything the host caches (at server shutdown), so the bindings its loaded
    /// code holds (and with them the store) are released.
    fn shutdown(&self) {}
}

/// Why a host call failed. The HTTP status each maps to is in [`HostError::status`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The code is broken: syntax error, bad module graph, missing export. At deploy time it
    /// refuses the deploy (400); at call time it is a 500.
    #[error("invalid code: {0}")]
    InvalidCode(String),
    /// The function threw (or rejected); the error keeps its name, message and properties.
    #[error("function threw {0}")]
    Thrown(RpcError),
    /// The function has no handler of this kind (e.g. no `fetch`).
    #[error("function has no {0} handler")]
    NoHandler(String),
    /// The call broke a memory or CPU limit and was stopped.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The host cannot take the call now (overloaded, shutting down).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The host itself failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl HostError {
    /// The HTTP status for a call that failed this way: `Thrown`, `InvalidCode` and
    /// `Internal` → 500, `NoHandler` → 501, `LimitExceeded` and `Unavailable` → 503, and a
    /// thrown error the function did not catch from a KV or blob binding whose store was
    /// unreachable ([`HostError::is_storage_unavailable`]) → 503.
    pub fn status(&self) -> u16 {
        match self {
            e if e.is_storage_unavailable() => 503,
            HostError::Thrown(_) | HostError::InvalidCode(_) | HostError::Internal(_) => 500,
            HostError::NoHandler(_) => 501,
            HostError::LimitExceeded(_) | HostError::Unavailable(_) => 503,
        }
    }

    /// A thrown `StorageUnavailableError` (what a KV or blob binding throws when the shared
    /// store cannot be reached) that the function let escape: the request may succeed if
    /// retried, so it is answered 503 with `Retry-After`. A function may throw an error of
    /// that name itself; it only gets itself a 503.
    pub fn is_storage_unavailable(&self) -> bool {
        matches!(self, HostError::Thrown(e) if e.name() == crate::bindings::STORAGE_UNAVAILABLE_ERROR)
    }

    /// The error as a thrown capnweb value (for callers that see errors as JS errors).
    pub fn to_rpc_error(&self) -> RpcError {
        match self {
            HostError::Thrown(e) => e.clone(),
            HostError::InvalidCode(m) => RpcError::new("SyntaxError", m.clone()),
            HostError::LimitExceeded(m) => RpcError::range_error(m.clone()),
            other => RpcError::error(other.to_string()),
        }
    }
}
