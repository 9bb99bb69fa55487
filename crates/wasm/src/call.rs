//! Calls across the boundary, both ways: JavaScript calling an exported wasm function
//! ([`call_export`]), and wasm calling a JavaScript import ([`host_call`]). An exception a
//! JavaScript import throws goes through the wasm frames and reaches the JavaScript caller as
//! it was thrown; a trap becomes a `WebAssembly.RuntimeError`.

use rquickjs::function::{Args, Params};
use rquickjs::{Ctx, Exception, Value as JsValue};
use wasmtime::{Caller, Func, FuncType, RootScope, Trap, Val};

use crate::engine::error_chain;
use crate::error::{throw, OrThrow, WasmError};
use crate::externref::Out;
use crate::handle::Signature;
use crate::memory;
use crate::store::{StoreData, Wasm};
use crate::values;

/// The error a host function returns when its JavaScript threw (the exception itself waits in
/// the [`Wasm`]).
#[derive(Debug)]
pub(crate) struct JsThrew;

impl std::fmt::Display for JsThrew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JavaScript import threw")
    }
}

impl std::error::Error for JsThrew {}

/// Calls exported function `func` with JavaScript arguments `params`.
pub(crate) fn call_export<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    func: Func,
    signature: &Signature,
    params: &Params<'_, 'js>,
) -> rquickjs::Result<JsValue<'js>> {
    let mut args = Vec::with_capacity(signature.params.len());
    for (i, ty) in signature.params.iter().enumerate() {
        let v = params
            .arg(i)
            .unwrap_or_else(|| JsValue::new_undefined(ctx.clone()));
        args.push(values::to_arg(ctx, wasm, v, ty)?);
    }
    if wasm.embedder().should_stop() {
        return Err(throw(ctx, Some(wasm), WasmError::Interrupted));
    }
    let defaults: Vec<Val> = signature.results.iter().map(values::default_of).collect();
    // The externrefs made for the arguments and read from the results are rooted in this
    // scope only: once the call is over, wasm's own references are what keep them.
    let outcome = wasm
        .with_store(
            |mut cx| -> Result<Result<Vec<Out>, wasmtime::Error>, WasmError> {
                let mut scope = RootScope::new(&mut cx);
                let mut vals = Vec::with_capacity(args.len());
                for arg in args {
                    vals.push(arg.into_val(&mut scope)?);
                }
                let mut results = defaults;
                if let Err(e) = func.call(&mut scope, &vals, &mut results) {
                    return Ok(Err(e));
                }
                let outs = results
                    .iter()
                    .map(|r| Out::of(&scope, wasm, r))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Ok(outs))
            },
        )
        .and_then(|r| r);
    memory::refresh(ctx, wasm).or_throw(ctx, wasm)?;
    let outcome = outcome.or_throw(ctx, wasm)?;
    wasm.after_call().or_throw(ctx, wasm)?;
    let results = outcome
        .map_err(|e| call_error(wasm, &e))
        .or_throw(ctx, wasm)?;
    values::results_to_js(ctx, wasm, results)
}

/// What a failed call into wasm (or a failed start function) means for JavaScript.
pub(crate) fn call_error(wasm: &Wasm, e: &wasmtime::Error) -> WasmError {
    if e.is::<JsThrew>() {
        return WasmError::Thrown;
    }
    if wasm.embedder().should_stop() {
        return WasmError::Interrupted;
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => WasmError::Interrupted,
        Some(trap) => WasmError::Trap(trap_message(*trap)),
        None => WasmError::Trap(error_chain(e)),
    }
}

/// A trap's description, without wasmtime's "wasm trap: " prefix.
fn trap_message(trap: Trap) -> String {
    let text = trap.to_string();
    match text.strip_prefix("wasm trap: ") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// The body of every host function: calls the JavaScript function kept under `index` with
/// wasm's arguments, and converts what it returns to `ty`'s results.
pub(crate) fn host_call(
    mut caller: Caller<'_, StoreData>,
    index: usize,
    ty: &FuncType,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let Some(wasm) = caller.data().wasm.upgrade() else {
        return Err(wasmtime::Error::msg("the isolate is shutting down"));
    };
    let Some(raw) = wasm.ctx_ptr() else {
        return Err(wasmtime::Error::msg(
            "WebAssembly has no JavaScript context",
        ));
    };
    // SAFETY: every entry into wasm is made from JavaScript running in this context, on this
    // thread (the natives are its only way in), so the context is alive and in use right now;
    // the `Ctx` made here takes its own reference and is dropped before this returns.
    let ctx = unsafe { Ctx::from_raw(raw) };
    let lent = wasm.lend(&mut caller);
    let outcome = run_import(&ctx, &wasm, index, ty, params, results);
    drop(lent);
    outcome.map_err(|e| {
        wasm.keep_pending(&ctx, e);
        wasmtime::Error::new(JsThrew)
    })
}

fn run_import<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    index: usize,
    ty: &FuncType,
    params: &[Val],
    results: &mut [Val],
) -> rquickjs::Result<()> {
    // The import may look at memory that grew since JavaScript last did.
    memory::refresh(ctx, wasm).or_throw(ctx, wasm)?;
    let f = wasm.import(ctx, index)?;
    let mut args = Args::new(ctx.clone(), params.len());
    for p in params {
        args.push_arg(values::to_js(ctx, wasm, p)?)?;
    }
    let ret: JsValue<'js> = f.call_arg(args)?;
    let types: Vec<_> = ty.results().collect();
    match types.as_slice() {
        [] => {}
        [one] => results[0] = values::to_wasm(ctx, wasm, ret, one)?,
        many => {
            let Some(array) = ret.as_array() else {
                return Err(Exception::throw_type(
                    ctx,
                    &format!(
                        "a WebAssembly import with {} results must return an array",
                        many.len()
                    ),
                ));
            };
            if array.len() != many.len() {
                return Err(Exception::throw_type(
                    ctx,
                    &format!(
                        "a WebAssembly import with {} results returned {} values",
                        many.len(),
                        array.len()
                    ),
                ));
            }
            for (i, t) in many.iter().enumerate() {
                let v: JsValue<'js> = array.get(i)?;
                results[i] = values::to_wasm(ctx, wasm, v, t)?;
            }
        }
    }
    Ok(())
}
