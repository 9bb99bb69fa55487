//! `WebAssembly.compile` and `instantiate` off the JavaScript thread: the `compileAsync` native
//! the `wasm` crate's JavaScript API uses when the embedder offers it. The bytes are copied
//! (and charged to the isolate's memory budget until the compile ends) and handed to the
//! `wasm` crate's compile threads; the JavaScript thread goes back to the isolate's other work.
//! When the module is ready, a job on the isolate charges the compile time to the invocation
//! that asked (which may break its CPU limit: then the call fails with `ResourceLimitError`,
//! as if JavaScript had spun that long) and settles the promise. The wait is background work of
//! the invocation (`Host::settle_later_with`): if the invocation ends first, the promise never
//! settles. Outside any invocation (top-level code) the module compiles synchronously.
//!
//! Against a hostile function: a module past `wasm::max_module_bytes` is refused at once
//! (`RangeError`); each compile in flight holds its bytes against the isolate's memory limit,
//! so an isolate cannot queue more bytes than that; at most the compile pool's threads compile
//! at once, for all isolates together; and compile time counts as CPU time of the invocation.

use std::rc::Weak;
use std::time::Duration;

use rquickjs::{Ctx, Exception, Function, Object, TypedArray, Value as JsValue};
use tokio::sync::oneshot::error::RecvError;

use crate::host::Host;

/// Adds `compileAsync(bytes)` to the WebAssembly natives: a promise of a module handle, or
/// `undefined` outside any invocation (the JavaScript API then compiles synchronously, as
/// `new WebAssembly.Module` does).
pub(crate) fn install<'js>(
    ctx: &Ctx<'js>,
    natives: &Object<'js>,
    host: Weak<Host>,
) -> rquickjs::Result<()> {
    natives.set(
        "compileAsync",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>| -> rquickjs::Result<JsValue<'js>> {
                let host = host
                    .upgrade()
                    .ok_or_else(|| Exception::throw_internal(&ctx, "the isolate is shutting down"))?;
                let len = bytes.len();
                let max = wasm::max_module_bytes();
                if len > max {
                    return Err(Exception::throw_range(
                        &ctx,
                        &format!(
                            "WebAssembly module of {len} bytes is larger than the limit of {max} bytes"
                        ),
                    ));
                }
                let shared = host
                    .shared()
                    .ok_or_else(|| Exception::throw_internal(&ctx, "the isolate is shutting down"))?;
                // The copy is charged to the isolate's memory until the compile ends (given
                // back by a job of its own: the invocation may have ended by then).
                if !host.wasm().reserve(len) {
                    return Err(Exception::throw_range(
                        &ctx,
                        "not enough memory left in this isolate to compile the module",
                    ));
                }
                let (tx, rx) = tokio::sync::oneshot::channel();
                let promise = match host.settle_later_with(&ctx, rx, finish) {
                    Ok(Some(promise)) => promise,
                    other => {
                        host.wasm().release(len);
                        return other.map(|_| JsValue::new_undefined(ctx.clone()));
                    }
                };
                // SAFETY: the slice is copied into a Vec at once; no JavaScript runs while it
                // is borrowed, so the engine cannot detach or resize the buffer under it.
                let copy = unsafe { bytes.as_bytes() }.map(<[u8]>::to_vec).unwrap_or_default();
                wasm::compile_in_background(copy, move |result, took| {
                    shared.post(move |_, host| host.wasm().release(len));
                    let _ = tx.send((result, took));
                });
                Ok(promise.into_value())
            },
        )?,
    )
}

/// What the compile threads answer: the module (or why not) and how long they worked on it.
type Compiled = Result<(Result<wasm::CompiledModule, wasm::WasmError>, Duration), RecvError>;

/// Charges the compile time to invocation `owner`, then gives the module's handle (or throws
/// the compile error). Leaves the promise unsettled if that broke the CPU limit: the isolate is
/// then discarded and the call fails with `ResourceLimitError`.
fn finish<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    owner: u64,
    compiled: Compiled,
) -> rquickjs::Result<Option<JsValue<'js>>> {
    let Ok((result, took)) = compiled else {
        return Err(Exception::throw_internal(ctx, "the compile thread stopped"));
    };
    host.charge(owner, took);
    if host.limit_broken().is_some() {
        return Ok(None);
    }
    match result {
        Ok(module) => host.wasm().module_handle(ctx, module).map(Some),
        Err(e) => Err(ctx.throw(host.wasm().error_value(ctx, e))),
    }
}
