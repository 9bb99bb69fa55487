//! `WebAssembly.compile` and `instantiate` off the JavaScript thread: the `compileAsync` native
//! the `wasm` crate's JavaScript API uses when the embedder offers it. The bytes are copied
//! (and charged to the isolate's memory budget until the compile ends) and handed to the
//! `wasm` crate's compile threads; the JavaScript thread goes back to the isolate's other work.
//! When the module is ready, a job on the isolate charges the compile time to the invocation
//! that asked (which may break its CPU limit: then the call fails with `ResourceLimitError`,
//! as if JavaScript had spun that long) and settles the promise.
//!
//! Against a hostile function: a module past `wasm::max_module_bytes` is refused at once
//! (`RangeError`); each compile in flight holds its bytes against the isolate's memory limit,
//! so an isolate cannot queue more bytes than that; at most the compile pool's threads compile
//! at once, for all isolates together; and compile time counts as CPU time of the invocation
//! (if the invocation has already finished, nobody is charged: the work was bounded by the
//! size cap).

use std::rc::Weak;
use std::time::Duration;

use rquickjs::{Ctx, Exception, Function, Object, Promise, TypedArray, Value as JsValue};

use crate::host::Host;

/// Adds `compileAsync(bytes)` to the WebAssembly natives: a promise of a module handle.
pub(crate) fn install<'js>(
    ctx: &Ctx<'js>,
    natives: &Object<'js>,
    host: Weak<Host>,
) -> rquickjs::Result<()> {
    natives.set(
        "compileAsync",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>| -> rquickjs::Result<Promise<'js>> {
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
                if !host.wasm().reserve(len) {
                    return Err(Exception::throw_range(
                        &ctx,
                        "not enough memory left in this isolate to compile the module",
                    ));
                }
                // SAFETY: the slice is copied into a Vec at once; no JavaScript runs while it
                // is borrowed, so the engine cannot detach or resize the buffer under it.
                let copy = unsafe { bytes.as_bytes() }.map(<[u8]>::to_vec);
                let Some(copy) = copy else {
                    host.wasm().release(len);
                    return Err(Exception::throw_type(&ctx, "the buffer is detached"));
                };
                let Some(shared) = host.shared() else {
                    host.wasm().release(len);
                    return Err(Exception::throw_internal(&ctx, "the isolate is shutting down"));
                };
                let (promise, resolve, reject) = ctx.promise()?;
                let id = host.add_pull(&ctx, resolve, reject);
                wasm::compile_in_background(copy, move |result, took| {
                    shared.post(move |ctx, host| finish(ctx, host, id, result, took, len));
                });
                Ok(promise)
            },
        )?,
    )
}

/// Settles promise `id` with the compiled module (or the error), after charging `took` to the
/// invocation that asked.
fn finish<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    id: u64,
    result: Result<wasm::CompiledModule, wasm::WasmError>,
    took: Duration,
    reserved: usize,
) {
    host.wasm().release(reserved);
    let Some((resolve, reject, owner)) = host.take_pull(id) else {
        return;
    };
    host.enter(owner);
    host.charge(owner, took);
    if host.limit_broken().is_some() {
        // The job ends, and the isolate is discarded with the reason (see `Unit::run`).
        return;
    }
    let settle = || -> rquickjs::Result<()> {
        let (f, v): (JsValue<'js>, JsValue<'js>) = match result {
            Ok(module) => (
                resolve.restore(ctx)?,
                host.wasm().module_handle(ctx, module)?,
            ),
            Err(e) => (
                reject.clone().restore(ctx)?,
                host.wasm().error_value(ctx, e),
            ),
        };
        match f.into_function() {
            Some(f) => f.call::<_, ()>((v,)),
            None => Ok(()),
        }
    };
    if let Err(e) = settle() {
        let thrown = if e.is_exception() {
            ctx.catch()
        } else {
            JsValue::new_undefined(ctx.clone())
        };
        if let Ok(Some(f)) = reject.restore(ctx).map(|v| v.into_function()) {
            if f.call::<_, ()>((thrown,)).is_err() {
                let _ = ctx.catch();
            }
        }
    }
}
