//! The Rust functions `js/webassembly.js` is built on, handed to it as one `native` object
//! (not reachable from user code). The JavaScript side checks descriptors and argument shapes
//! as the spec says; these do the work on the store.

use std::rc::{Rc, Weak};

use rquickjs::function::Constructor;
use rquickjs::{Array, Ctx, Exception, Function, Object, TypedArray, Value as JsValue};
use wasmtime::{
    AsContextMut, ExternType, Memory, MemoryType, Mutability, RefType, RootScope, Table, TableType,
};

use crate::error::{throw, OrThrow, WasmError};
use crate::externref::{Arg, Out};
use crate::handle::{self, Item};
use crate::store::Wasm;
use crate::values;

/// Builds the `native` object `JS_API` takes, for `wasm`'s isolate; `ctx` is the context its
/// JavaScript runs in (the only one wasm will call back into).
pub fn natives<'js>(ctx: &Ctx<'js>, wasm: &Rc<Wasm>) -> rquickjs::Result<Object<'js>> {
    wasm.set_ctx(ctx);
    let proto = Function::new(ctx.clone(), || ())?
        .get_prototype()
        .ok_or_else(|| Exception::throw_internal(ctx, "Function.prototype is missing"))?;
    wasm.set_function_prototype(ctx, proto);
    let n = Object::new(ctx.clone())?;
    let weak = Rc::downgrade(wasm);

    let w = weak.clone();
    n.set(
        "setErrors",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  compile: Constructor<'js>,
                  link: Constructor<'js>,
                  runtime: Constructor<'js>| {
                let wasm = alive(&ctx, &w)?;
                wasm.set_error_class(&ctx, "CompileError", compile);
                wasm.set_error_class(&ctx, "LinkError", link);
                wasm.set_error_class(&ctx, "RuntimeError", runtime);
                Ok::<_, rquickjs::Error>(())
            },
        )?,
    )?;

    let w = weak.clone();
    n.set(
        "compile",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>| {
                let wasm = alive(&ctx, &w)?;
                let len = bytes.len();
                crate::compile::check_size(len).or_throw(&ctx, &wasm)?;
                let bytes = bytes_of(&bytes);
                let module = match wasm.take_preloaded(&bytes) {
                    Some(module) => module,
                    None => {
                        let (module, took) = crate::compile::compile_timed(&bytes);
                        wasm.embedder().charge_cpu(took);
                        module.or_throw(&ctx, &wasm)?
                    }
                };
                handle::handle(&ctx, &wasm, Item::Module(module))
            },
        )?,
    )?;

    let w = weak.clone();
    n.set(
        "validate",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>| {
                let wasm = alive(&ctx, &w)?;
                crate::engine::validate(&bytes_of(&bytes)).or_throw(&ctx, &wasm)
            },
        )?,
    )?;

    let w = weak.clone();
    n.set(
        "moduleImports",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, h: JsValue<'js>| {
            let wasm = alive(&ctx, &w)?;
            let module = handle::module_of(&ctx, &wasm, &h)?;
            let rows = module
                .imports()
                .map(|i| {
                    vec![
                        i.module().to_owned(),
                        i.name().to_owned(),
                        kind(&i.ty()).into(),
                    ]
                })
                .collect::<Vec<_>>();
            rows_to_js(&ctx, rows)
        })?,
    )?;

    let w = weak.clone();
    n.set(
        "moduleExports",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, h: JsValue<'js>| {
            let wasm = alive(&ctx, &w)?;
            let module = handle::module_of(&ctx, &wasm, &h)?;
            let rows = module
                .exports()
                .map(|e| vec![e.name().to_owned(), kind(&e.ty()).into()])
                .collect::<Vec<_>>();
            rows_to_js(&ctx, rows)
        })?,
    )?;

    let w = weak.clone();
    n.set(
        "instantiate",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, h: JsValue<'js>, resolved: Array<'js>| {
                let wasm = alive(&ctx, &w)?;
                let module = handle::module_of(&ctx, &wasm, &h)?;
                crate::imports::instantiate(&ctx, &wasm, &module, &resolved)
            },
        )?,
    )?;

    install_memory(ctx, &n, &weak)?;
    install_global(ctx, &n, &weak)?;
    install_table(ctx, &n, &weak)?;
    Ok(n)
}

fn install_memory<'js>(ctx: &Ctx<'js>, n: &Object<'js>, weak: &Weak<Wasm>) -> rquickjs::Result<()> {
    let w = weak.clone();
    n.set(
        "memoryNew",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, initial: u32, maximum: Option<u32>| {
                let wasm = alive(&ctx, &w)?;
                wasm.count_memories(1).or_throw(&ctx, &wasm)?;
                let memory = wasm
                    .with_store(|mut cx| {
                        cx.data_mut().limiter.refusal = None;
                        Memory::new(&mut cx, MemoryType::new(initial, maximum)).map_err(|e| {
                            let reason = cx.data_mut().limiter.refusal.take();
                            WasmError::Limit(format!(
                                "WebAssembly.Memory(): {}",
                                reason.unwrap_or_else(|| crate::engine::error_chain(&e))
                            ))
                        })
                    })
                    .or_throw(&ctx, &wasm)?
                    .inspect_err(|_| wasm.uncount_memories(1))
                    .or_throw(&ctx, &wasm)?;
                handle::handle(&ctx, &wasm, Item::Memory(memory))
            },
        )?,
    )?;

    let w = weak.clone();
    n.set(
        "memoryBuffer",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, h: JsValue<'js>| {
            let wasm = alive(&ctx, &w)?;
            let memory = handle::memory_of(&ctx, &wasm, &h)?;
            crate::memory::buffer(&ctx, &wasm, memory).or_throw(&ctx, &wasm)
        })?,
    )?;

    let w = weak.clone();
    n.set(
        "memoryGrow",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, h: JsValue<'js>, delta: u32| {
                let wasm = alive(&ctx, &w)?;
                let memory = handle::memory_of(&ctx, &wasm, &h)?;
                let old = wasm
                    .with_store(|mut cx| {
                        cx.data_mut().limiter.refusal = None;
                        memory.grow(&mut cx, u64::from(delta)).map_err(|e| {
                            let reason = cx.data_mut().limiter.refusal.take();
                            WasmError::Limit(format!(
                                "WebAssembly.Memory.grow(): {}",
                                reason.unwrap_or_else(|| crate::engine::error_chain(&e))
                            ))
                        })
                    })
                    .or_throw(&ctx, &wasm)?;
                crate::memory::refresh(&ctx, &wasm).or_throw(&ctx, &wasm)?;
                let old = old.or_throw(&ctx, &wasm)?;
                Ok::<_, rquickjs::Error>(old as f64)
            },
        )?,
    )?;
    Ok(())
}

fn install_global<'js>(ctx: &Ctx<'js>, n: &Object<'js>, weak: &Weak<Wasm>) -> rquickjs::Result<()> {
    let w = weak.clone();
    n.set(
        "globalNew",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, ty: String, mutable: bool, value: JsValue<'js>| {
                let wasm = alive(&ctx, &w)?;
                let content = values::parse_type(&ty).ok_or_else(|| {
                    Exception::throw_type(
                        &ctx,
                        &format!("WebAssembly.Global(): invalid value type '{ty}'"),
                    )
                })?;
                // A missing value is the type's default: zero, a null funcref, or (for an
                // externref) `undefined` itself.
                let arg = if value.is_undefined() && ty != "externref" {
                    Arg::Val(values::default_of(&content))
                } else {
                    values::to_arg(&ctx, &wasm, value, &content)?
                };
                let mutability = if mutable {
                    Mutability::Var
                } else {
                    Mutability::Const
                };
                let global = wasm
                    .with_store(|mut cx| {
                        let mut scope = RootScope::new(&mut cx);
                        let val = arg.into_val(&mut scope)?;
                        wasmtime::Global::new(
                            &mut scope,
                            wasmtime::GlobalType::new(content, mutability),
                            val,
                        )
                        .map_err(|e| WasmError::Type(crate::engine::error_chain(&e)))
                    })
                    .and_then(|r| r)
                    .or_throw(&ctx, &wasm)?;
                handle::handle(&ctx, &wasm, Item::Global(global))
            },
        )?,
    )?;

    let w = weak.clone();
    n.set(
        "globalGet",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, h: JsValue<'js>| {
            let wasm = alive(&ctx, &w)?;
            let global = handle::global_of(&ctx, &wasm, &h)?;
            let out = wasm
                .with_store(|mut cx| {
                    let mut scope = RootScope::new(&mut cx);
                    let v = global.get(&mut scope);
                    Out::of(&scope, &wasm, &v)
                })
                .and_then(|r| r)
                .or_throw(&ctx, &wasm)?;
            values::out_to_js(&ctx, &wasm, out)
        })?,
    )?;

    let w = weak.clone();
    n.set(
        "globalSet",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, h: JsValue<'js>, value: JsValue<'js>| {
                let wasm = alive(&ctx, &w)?;
                let global = handle::global_of(&ctx, &wasm, &h)?;
                let ty = wasm.with_store(|cx| global.ty(&cx)).or_throw(&ctx, &wasm)?;
                if ty.mutability() == Mutability::Const {
                    return Err(Exception::throw_type(
                        &ctx,
                        "WebAssembly.Global: cannot set the value of an immutable global",
                    ));
                }
                let arg = values::to_arg(&ctx, &wasm, value, ty.content())?;
                wasm.with_store(|mut cx| {
                    let mut scope = RootScope::new(&mut cx);
                    let val = arg.into_val(&mut scope)?;
                    global
                        .set(&mut scope, val)
                        .map_err(|e| WasmError::Type(crate::engine::error_chain(&e)))
                })
                .and_then(|r| r)
                .or_throw(&ctx, &wasm)?;
                wasm.after_call().or_throw(&ctx, &wasm)
            },
        )?,
    )?;

    let w = weak.clone();
    n.set(
        "globalType",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, h: JsValue<'js>| {
            let wasm = alive(&ctx, &w)?;
            let global = handle::global_of(&ctx, &wasm, &h)?;
            let ty = wasm.with_store(|cx| global.ty(&cx)).or_throw(&ctx, &wasm)?;
            let row = Array::new(ctx.clone())?;
            row.set(0, values::type_name(ty.content()))?;
            row.set(1, ty.mutability() == Mutability::Var)?;
            Ok::<_, rquickjs::Error>(row)
        })?,
    )?;
    Ok(())
}

/// A table's element type, named as the JS API names it.
fn element_type(ctx: &Ctx<'_>, name: &str) -> rquickjs::Result<RefType> {
    match name {
        "anyfunc" | "funcref" => Ok(RefType::FUNCREF),
        "externref" => Ok(RefType::EXTERNREF),
        other => Err(Exception::throw_type(
            ctx,
            &format!("WebAssembly.Table(): element type '{other}' is not supported"),
        )),
    }
}

fn install_table<'js>(ctx: &Ctx<'js>, n: &Object<'js>, weak: &Weak<Wasm>) -> rquickjs::Result<()> {
    let w = weak.clone();
    n.set(
        "tableNew",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  element: String,
                  initial: u32,
                  maximum: Option<u32>,
                  init: JsValue<'js>| {
                let wasm = alive(&ctx, &w)?;
                let element = element_type(&ctx, &element)?;
                let init = values::to_element(&ctx, &wasm, init, &element)?;
                let table = wasm
                    .with_store(|mut cx| {
                        let mut scope = RootScope::new(&mut cx);
                        let init = init.into_ref(&mut scope)?;
                        scope.as_context_mut().data_mut().limiter.refusal = None;
                        Table::new(&mut scope, TableType::new(element, initial, maximum), init)
                            .map_err(|e| {
                                let reason =
                                    scope.as_context_mut().data_mut().limiter.refusal.take();
                                WasmError::Limit(format!(
                                    "WebAssembly.Table(): {}",
                                    reason.unwrap_or_else(|| crate::engine::error_chain(&e))
                                ))
                            })
                    })
                    .and_then(|r| r)
                    .or_throw(&ctx, &wasm)?;
                handle::handle(&ctx, &wasm, Item::Table(table))
            },
        )?,
    )?;

    let w = weak.clone();
    n.set(
        "tableSize",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, h: JsValue<'js>| {
            let wasm = alive(&ctx, &w)?;
            let table = handle::table_of(&ctx, &wasm, &h)?;
            let size = wasm
                .with_store(|cx| table.size(&cx))
                .or_throw(&ctx, &wasm)?;
            Ok::<_, rquickjs::Error>(size as f64)
        })?,
    )?;

    let w = weak.clone();
    n.set(
        "tableGet",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, h: JsValue<'js>, index: u32| {
                let wasm = alive(&ctx, &w)?;
                let table = handle::table_of(&ctx, &wasm, &h)?;
                let out = wasm
                    .with_store(|mut cx| {
                        let mut scope = RootScope::new(&mut cx);
                        match table.get(&mut scope, u64::from(index)) {
                            Some(r) => Out::of_ref(&scope, &wasm, r).map(Some),
                            None => Ok(None),
                        }
                    })
                    .and_then(|r| r)
                    .or_throw(&ctx, &wasm)?;
                let Some(out) = out else {
                    return Err(Exception::throw_range(
                        &ctx,
                        "WebAssembly.Table.get(): index out of bounds",
                    ));
                };
                values::out_to_js(&ctx, &wasm, out)
            },
        )?,
    )?;

    let w = weak.clone();
    n.set(
        "tableSet",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, h: JsValue<'js>, index: u32, value: JsValue<'js>| {
                let wasm = alive(&ctx, &w)?;
                let table = handle::table_of(&ctx, &wasm, &h)?;
                let ty = wasm.with_store(|cx| table.ty(&cx)).or_throw(&ctx, &wasm)?;
                if u64::from(index)
                    >= wasm
                        .with_store(|cx| table.size(&cx))
                        .or_throw(&ctx, &wasm)?
                {
                    return Err(Exception::throw_range(
                        &ctx,
                        "WebAssembly.Table.set(): index out of bounds",
                    ));
                }
                let arg = values::to_element(&ctx, &wasm, value, ty.element())?;
                wasm.with_store(|mut cx| {
                    let mut scope = RootScope::new(&mut cx);
                    let r = arg.into_ref(&mut scope)?;
                    table.set(&mut scope, u64::from(index), r).map_err(|_| {
                        WasmError::Limit("WebAssembly.Table.set(): index out of bounds".into())
                    })
                })
                .and_then(|r| r)
                .or_throw(&ctx, &wasm)?;
                wasm.after_call().or_throw(&ctx, &wasm)
            },
        )?,
    )?;

    let w = weak.clone();
    n.set(
        "tableGrow",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, h: JsValue<'js>, delta: u32, init: JsValue<'js>| {
                let wasm = alive(&ctx, &w)?;
                let table = handle::table_of(&ctx, &wasm, &h)?;
                let ty = wasm.with_store(|cx| table.ty(&cx)).or_throw(&ctx, &wasm)?;
                let init = values::to_element(&ctx, &wasm, init, ty.element())?;
                let old = wasm
                    .with_store(|mut cx| {
                        let mut scope = RootScope::new(&mut cx);
                        let init = init.into_ref(&mut scope)?;
                        scope.as_context_mut().data_mut().limiter.refusal = None;
                        table.grow(&mut scope, u64::from(delta), init).map_err(|e| {
                            let reason = scope.as_context_mut().data_mut().limiter.refusal.take();
                            WasmError::Limit(format!(
                                "WebAssembly.Table.grow(): {}",
                                reason.unwrap_or_else(|| crate::engine::error_chain(&e))
                            ))
                        })
                    })
                    .and_then(|r| r)
                    .or_throw(&ctx, &wasm)?;
                wasm.after_call().or_throw(&ctx, &wasm)?;
                Ok::<_, rquickjs::Error>(old as f64)
            },
        )?,
    )?;
    Ok(())
}

fn alive(ctx: &Ctx<'_>, weak: &Weak<Wasm>) -> rquickjs::Result<Rc<Wasm>> {
    match weak.upgrade() {
        Some(w) if !w.is_cleared() => Ok(w),
        _ => Err(throw(ctx, None, WasmError::Gone)),
    }
}

/// The JS API's name for an import or export kind.
fn kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "function",
        ExternType::Global(_) => "global",
        ExternType::Table(_) => "table",
        ExternType::Memory(_) => "memory",
        ExternType::Tag(_) => "tag",
    }
}

fn rows_to_js<'js>(ctx: &Ctx<'js>, rows: Vec<Vec<String>>) -> rquickjs::Result<Array<'js>> {
    let out = Array::new(ctx.clone())?;
    for (i, row) in rows.into_iter().enumerate() {
        let r = Array::new(ctx.clone())?;
        for (j, cell) in row.into_iter().enumerate() {
            r.set(j, cell)?;
        }
        out.set(i, r)?;
    }
    Ok(out)
}

fn bytes_of(a: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: the slice is copied into a Vec at once; no JavaScript runs while it is borrowed,
    // so the engine cannot detach or resize the buffer under it.
    unsafe { a.as_bytes() }
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}
