//! Instantiation: the import values JavaScript resolved from the import object become wasmtime
//! externs (a JavaScript function becomes a host function that calls it, an exported wasm
//! function or a `Memory`/`Table`/`Global` is linked as itself, a Number or BigInt becomes an
//! immutable global), then the instance's exports go back to JavaScript.

use rquickjs::{Array, Class, Ctx, Exception, Value as JsValue};
use wasmtime::{
    AsContextMut, Extern, ExternType, Func, FuncType, Global, GlobalType, Instance, Module,
    Mutability, RootScope, ValType,
};

use crate::call::{call_error, host_call, JsThrew};
use crate::engine::error_chain;
use crate::error::{throw, OrThrow, WasmError};
use crate::externref::Arg;
use crate::handle::{self, ExportedFunction, Item};
use crate::memory;
use crate::store::Wasm;
use crate::values;

/// An import as it will be linked.
enum Provided {
    Extern(Extern),
    /// A JavaScript function, kept under this index.
    Js(usize, FuncType),
    /// A value for an immutable global.
    Value(ValType, Arg),
}

/// What an instance exports: name, kind and, for functions, the type.
type Exports = Vec<(String, Extern, Option<FuncType>)>;

/// Instantiates `module` with `resolved` (one value per import, in the module's order) and
/// returns its exports as `[name, kind, value]` triples: a function for a function, a handle
/// for a memory, table or global.
pub(crate) fn instantiate<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    module: &Module,
    resolved: &Array<'js>,
) -> rquickjs::Result<Array<'js>> {
    let imports: Vec<(String, String, ExternType)> = module
        .imports()
        .map(|i| (i.module().to_owned(), i.name().to_owned(), i.ty()))
        .collect();
    if resolved.len() != imports.len() {
        return Err(Exception::throw_type(
            ctx,
            "wrong number of resolved imports",
        ));
    }
    let defined = usize::try_from(module.resources_required().num_memories).unwrap_or(usize::MAX);
    let mut provided = Vec::with_capacity(imports.len());
    for (i, (module_name, name, ty)) in imports.into_iter().enumerate() {
        let v: JsValue<'js> = resolved.get(i)?;
        let link = |what: &str| {
            throw(
                ctx,
                Some(wasm),
                WasmError::Link(format!(
                    "WebAssembly.Instance(): import '{module_name}'.'{name}' {what}"
                )),
            )
        };
        provided.push(provide(ctx, wasm, v, ty, &link)?);
    }
    wasm.count_memories(defined).or_throw(ctx, wasm)?;
    let exports = wasm
        .with_store(|mut cx| -> Result<Exports, WasmError> {
            // Externrefs made for imported globals are rooted here until the globals hold them.
            let mut cx = RootScope::new(&mut cx);
            let mut externs = Vec::with_capacity(provided.len());
            for p in provided {
                externs.push(match p {
                    Provided::Extern(e) => e,
                    Provided::Js(index, ty) => {
                        let t = ty.clone();
                        Func::try_new(&mut cx, ty, move |caller, params, results| {
                            host_call(caller, index, &t, params, results)
                        })
                        .map_err(|e| WasmError::Limit(error_chain(&e)))?
                        .into()
                    }
                    Provided::Value(ty, arg) => {
                        let val = arg.into_val(&mut cx)?;
                        Global::new(&mut cx, GlobalType::new(ty, Mutability::Const), val)
                            .map_err(|e| WasmError::Link(error_chain(&e)))?
                            .into()
                    }
                });
            }
            cx.as_context_mut().data_mut().limiter.refusal = None;
            let instance = match Instance::new(&mut cx, module, &externs) {
                Ok(instance) => instance,
                Err(e) => {
                    let refusal = cx.as_context_mut().data_mut().limiter.refusal.take();
                    return Err(instantiate_error(wasm, &e, refusal));
                }
            };
            let exports: Vec<(String, Extern)> = instance
                .exports(&mut cx)
                .map(|e| (e.name().to_owned(), e.into_extern()))
                .collect();
            Ok(exports
                .into_iter()
                .map(|(name, ext)| {
                    let ty = ext.ty(&cx).func().cloned();
                    (name, ext, ty)
                })
                .collect())
        })
        .or_throw(ctx, wasm)?;
    if exports.is_err() {
        wasm.uncount_memories(defined);
    }
    memory::refresh(ctx, wasm).or_throw(ctx, wasm)?;
    let exports = exports.or_throw(ctx, wasm)?;
    let out = Array::new(ctx.clone())?;
    for (i, (name, ext, ty)) in exports.into_iter().enumerate() {
        let (kind, value) = match ext {
            Extern::Func(f) => ("function", handle::exported_function(ctx, wasm, f, ty)?),
            Extern::Memory(m) => ("memory", handle::handle(ctx, wasm, Item::Memory(m))?),
            Extern::Global(g) => ("global", handle::handle(ctx, wasm, Item::Global(g))?),
            Extern::Table(t) => ("table", handle::handle(ctx, wasm, Item::Table(t))?),
            _ => continue,
        };
        let triple = Array::new(ctx.clone())?;
        triple.set(0, name)?;
        triple.set(1, kind)?;
        triple.set(2, value)?;
        out.set(i, triple)?;
    }
    Ok(out)
}

/// Checks one resolved import value against the import's type.
fn provide<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    v: JsValue<'js>,
    ty: ExternType,
    link: &dyn Fn(&str) -> rquickjs::Error,
) -> rquickjs::Result<Provided> {
    Ok(match ty {
        ExternType::Func(ft) => {
            if let Ok(f) = Class::<ExportedFunction>::from_value(&v) {
                let f = f.borrow();
                if f.owner != wasm.id {
                    return Err(link("is a function of another isolate"));
                }
                Provided::Extern(f.func.into())
            } else if let Some(f) = v.into_function() {
                Provided::Js(wasm.keep_import(ctx, f), ft)
            } else {
                return Err(link("must be a function"));
            }
        }
        ExternType::Global(gt) => {
            if let Some(Item::Global(g)) = handle::peek(wasm, &v) {
                Provided::Extern(g.into())
            } else if gt.mutability() == Mutability::Var {
                return Err(link("is a mutable global: it must be a WebAssembly.Global"));
            } else if let ValType::Ref(_) = gt.content() {
                // Any JavaScript value for an externref, an exported function or null for a
                // funcref (ToWebAssemblyValue).
                let content = gt.content().clone();
                let arg = values::to_arg(ctx, wasm, v, &content)?;
                Provided::Value(content, arg)
            } else if v.is_number() || v.is_big_int() {
                let content = gt.content().clone();
                if v.is_big_int() != matches!(content, ValType::I64) {
                    return Err(link(&format!(
                        "must be a {} for a global of type {}",
                        if matches!(content, ValType::I64) {
                            "BigInt"
                        } else {
                            "Number"
                        },
                        values::type_name(&content)
                    )));
                }
                let arg = values::to_arg(ctx, wasm, v, &content)?;
                Provided::Value(content, arg)
            } else {
                return Err(link("must be a WebAssembly.Global, a Number or a BigInt"));
            }
        }
        ExternType::Memory(_) => match handle::peek(wasm, &v) {
            Some(Item::Memory(m)) => Provided::Extern(m.into()),
            _ => return Err(link("must be a WebAssembly.Memory")),
        },
        ExternType::Table(_) => match handle::peek(wasm, &v) {
            Some(Item::Table(t)) => Provided::Extern(t.into()),
            _ => return Err(link("must be a WebAssembly.Table")),
        },
        ExternType::Tag(_) => return Err(link("is a tag: exceptions are not supported")),
    })
}

/// What a failed instantiation means for JavaScript: a trap in the start function is a
/// `RuntimeError`, a refused memory or table a `RangeError`, anything else a `LinkError`.
fn instantiate_error(wasm: &Wasm, e: &wasmtime::Error, refusal: Option<String>) -> WasmError {
    if e.is::<JsThrew>() || e.is::<wasmtime::Trap>() || wasm.embedder().should_stop() {
        return call_error(wasm, e);
    }
    if let Some(reason) = refusal {
        return WasmError::Limit(format!("WebAssembly.Instance(): {reason}"));
    }
    let text = error_chain(e);
    if text.starts_with("resource limit exceeded") {
        return WasmError::Limit(format!("WebAssembly.Instance(): {text}"));
    }
    WasmError::Link(format!("WebAssembly.Instance(): {text}"))
}
