//! [`WasmError`]: why a WebAssembly operation failed, and the one place that turns it into the
//! JavaScript exception the JS API spec asks for.

use rquickjs::{Ctx, Exception};

use crate::store::Wasm;

/// Why a WebAssembly operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The bytes are not a valid module (JavaScript: `WebAssembly.CompileError`).
    #[error("{0}")]
    Compile(String),
    /// Instantiation could not link an import (JavaScript: `WebAssembly.LinkError`).
    #[error("{0}")]
    Link(String),
    /// The code trapped (JavaScript: `WebAssembly.RuntimeError`).
    #[error("{0}")]
    Trap(String),
    /// A memory, table or instance would break a limit (JavaScript: `RangeError`).
    #[error("{0}")]
    Limit(String),
    /// A value or argument of the wrong kind (JavaScript: `TypeError`).
    #[error("{0}")]
    Type(String),
    /// The embedder stopped the code (its CPU limit passed, or its memory limit broke).
    #[error("WebAssembly execution was interrupted: the isolate hit a resource limit")]
    Interrupted,
    /// A JavaScript import threw; the exception is waiting in the [`Wasm`] to be rethrown.
    #[error("a JavaScript import threw")]
    Thrown,
    /// The engine could not be started.
    #[error("the WebAssembly engine could not start: {0}")]
    Engine(String),
    /// The isolate is being torn down.
    #[error("the isolate is shutting down")]
    Gone,
}

impl WasmError {
    /// The JavaScript class the error is thrown as.
    pub fn js_class(&self) -> &'static str {
        match self {
            WasmError::Compile(_) => "CompileError",
            WasmError::Link(_) => "LinkError",
            WasmError::Trap(_) | WasmError::Interrupted => "RuntimeError",
            WasmError::Limit(_) => "RangeError",
            WasmError::Type(_) => "TypeError",
            WasmError::Thrown => "Error",
            WasmError::Engine(_) | WasmError::Gone => "InternalError",
        }
    }
}

/// Throws `err` in `ctx` as the exception the spec asks for. A JavaScript exception that
/// crossed wasm is rethrown as it was.
pub(crate) fn throw(ctx: &Ctx<'_>, wasm: Option<&Wasm>, err: WasmError) -> rquickjs::Error {
    let message = err.to_string();
    match &err {
        WasmError::Thrown => {
            if let Some(value) = wasm.and_then(|w| w.take_pending(ctx)) {
                return ctx.throw(value);
            }
            Exception::throw_internal(ctx, &message)
        }
        WasmError::Compile(_) | WasmError::Link(_) | WasmError::Trap(_) => {
            match wasm.and_then(|w| w.error_class(ctx, err.js_class())) {
                Some(class) => match class.construct::<_, rquickjs::Value<'_>>((message.as_str(),))
                {
                    Ok(e) => ctx.throw(e),
                    Err(e) => e,
                },
                None => Exception::throw_message(ctx, &message),
            }
        }
        WasmError::Interrupted => {
            // Not catchable in any useful way: the embedder keeps refusing to run this isolate's
            // code (JavaScript is interrupted too), so this only carries the reason upward.
            Exception::throw_internal(ctx, &message)
        }
        WasmError::Limit(_) => Exception::throw_range(ctx, &message),
        WasmError::Type(_) => Exception::throw_type(ctx, &message),
        WasmError::Engine(_) | WasmError::Gone => Exception::throw_internal(ctx, &message),
    }
}

/// Extension to throw a `Result<T, WasmError>` in one line.
pub(crate) trait OrThrow<T> {
    /// The value, or the error thrown in `ctx`.
    fn or_throw(self, ctx: &Ctx<'_>, wasm: &Wasm) -> rquickjs::Result<T>;
}

impl<T> OrThrow<T> for Result<T, WasmError> {
    fn or_throw(self, ctx: &Ctx<'_>, wasm: &Wasm) -> rquickjs::Result<T> {
        self.map_err(|e| throw(ctx, Some(wasm), e))
    }
}
