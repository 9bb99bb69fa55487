//! Values between JavaScript and wasm, as the JS API spec's ToWebAssemblyValue and ToJSValue
//! say: `i32` via ToInt32, `i64` via ToBigInt64 (a Number is a `TypeError`), `f32`/`f64` via
//! ToNumber, `funcref` as an exported function or `null`, `externref` as any JavaScript value
//! (`null` is the null reference); `v128` and other references cannot cross (`TypeError`).
//!
//! An externref needs the store (it is an object in its GC heap), so values going into wasm
//! are first an [`Arg`] (a JavaScript value kept in the isolate's table, see `externref.rs`)
//! and become a `Val` inside the store scope that uses them; values coming out are read into
//! an [`Out`] while their references are still rooted.

use rquickjs::convert::Coerced;
use rquickjs::{qjs, BigInt, Class, Ctx, Exception, FromJs, IntoJs, Value as JsValue};
use wasmtime::{HeapType, RefType, Val, ValType};

use crate::error::OrThrow;
use crate::externref::{Arg, Out};
use crate::handle::{self, ExportedFunction};
use crate::store::Wasm;

/// ToWebAssemblyValue(`v`, `ty`), up to the store (see [`Arg`]).
pub(crate) fn to_arg<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    v: JsValue<'js>,
    ty: &ValType,
) -> rquickjs::Result<Arg> {
    Ok(Arg::Val(match ty {
        ValType::I32 => Val::I32(Coerced::<i32>::from_js(ctx, v)?.0),
        ValType::I64 => Val::I64(to_big_int64(ctx, &v)?),
        ValType::F32 => Val::F32((Coerced::<f64>::from_js(ctx, v)?.0 as f32).to_bits()),
        ValType::F64 => Val::F64(Coerced::<f64>::from_js(ctx, v)?.0.to_bits()),
        ValType::V128 => {
            return Err(Exception::throw_type(
                ctx,
                "a v128 value cannot cross between JavaScript and WebAssembly",
            ))
        }
        ValType::Ref(r) if is_func(r.heap_type()) => {
            Val::FuncRef(to_funcref(ctx, wasm, &v, r.is_nullable())?)
        }
        ValType::Ref(r) if is_extern(r.heap_type()) => return to_externref(ctx, wasm, v, r),
        ValType::Ref(r) => {
            return Err(Exception::throw_type(
                ctx,
                &format!("WebAssembly values of type {r} are not supported"),
            ))
        }
    }))
}

fn to_externref<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    v: JsValue<'js>,
    r: &RefType,
) -> rquickjs::Result<Arg> {
    if v.is_null() {
        if r.is_nullable() {
            return Ok(Arg::Extern(None));
        }
        return Err(Exception::throw_type(
            ctx,
            "null is not a value of a non-nullable externref",
        ));
    }
    if matches!(r.heap_type(), HeapType::NoExtern) {
        return Err(Exception::throw_type(ctx, "a nullexternref must be null"));
    }
    Ok(Arg::Extern(Some(
        wasm.keep_ref(ctx, v).or_throw(ctx, wasm)?,
    )))
}

/// ToWebAssemblyValue(`v`, `ty`) as a `Val`, rooted in the store's current scope: only for
/// where the scope is wasmtime's (the results of a JavaScript import).
pub(crate) fn to_wasm<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    v: JsValue<'js>,
    ty: &ValType,
) -> rquickjs::Result<Val> {
    match to_arg(ctx, wasm, v, ty)? {
        Arg::Val(v) => Ok(v),
        arg => wasm
            .with_store(|cx| arg.into_val(cx))
            .and_then(|r| r)
            .or_throw(ctx, wasm),
    }
}

/// A table element from JavaScript for a table of `element`s: `undefined` is `null` in a
/// funcref table and the JavaScript `undefined` in an externref table (the spec's
/// DefaultValue).
pub(crate) fn to_element<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    v: JsValue<'js>,
    element: &RefType,
) -> rquickjs::Result<Arg> {
    if v.is_undefined() && is_func(element.heap_type()) {
        return Ok(Arg::Val(Val::FuncRef(None)));
    }
    to_arg(ctx, wasm, v, &ValType::Ref(element.clone()))
}

fn to_funcref<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    v: &JsValue<'js>,
    nullable: bool,
) -> rquickjs::Result<Option<wasmtime::Func>> {
    if v.is_null() && nullable {
        return Ok(None);
    }
    match Class::<ExportedFunction>::from_value(v) {
        Ok(f) => {
            let f = f.borrow();
            if f.owner != wasm.id {
                return Err(Exception::throw_type(
                    ctx,
                    "the function belongs to another isolate",
                ));
            }
            Ok(Some(f.func))
        }
        Err(_) => Err(Exception::throw_type(
            ctx,
            "a funcref must be null or a function exported by WebAssembly",
        )),
    }
}

fn is_func(h: &HeapType) -> bool {
    matches!(
        h,
        HeapType::Func | HeapType::ConcreteFunc(_) | HeapType::NoFunc
    )
}

fn is_extern(h: &HeapType) -> bool {
    matches!(h, HeapType::Extern | HeapType::NoExtern)
}

/// ToBigInt64(`v`): a BigInt (or a string, boolean or object that converts to one) wrapped to
/// 64 bits; a Number is a `TypeError`.
fn to_big_int64<'js>(ctx: &Ctx<'js>, v: &JsValue<'js>) -> rquickjs::Result<i64> {
    let mut out = 0i64;
    // SAFETY: `ctx` and `v` are live handles of the same runtime; `JS_ToBigInt64` only reads
    // `v` (it takes its own reference) and writes the result to `out`.
    let rc = unsafe { qjs::JS_ToBigInt64(ctx.as_raw().as_ptr(), &mut out, v.as_raw()) };
    if rc < 0 {
        return Err(rquickjs::Error::Exception);
    }
    Ok(out)
}

/// ToJSValue(`v`), for a value wasm handed to a JavaScript import (its references are rooted
/// in the import's scope).
pub(crate) fn to_js<'js>(ctx: &Ctx<'js>, wasm: &Wasm, v: &Val) -> rquickjs::Result<JsValue<'js>> {
    let out = match v {
        Val::ExternRef(_) | Val::AnyRef(_) | Val::ExnRef(_) | Val::ContRef(_) => wasm
            .with_store(|cx| Out::of(cx, wasm, v))
            .and_then(|r| r)
            .or_throw(ctx, wasm)?,
        other => Out::Val(*other),
    };
    out_to_js(ctx, wasm, out)
}

/// ToJSValue of a value read out of the store.
pub(crate) fn out_to_js<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    out: Out,
) -> rquickjs::Result<JsValue<'js>> {
    match out {
        Out::Extern(None) => Ok(JsValue::new_null(ctx.clone())),
        Out::Extern(Some(value)) => value.restore(ctx),
        Out::Val(v) => match v {
            Val::I32(i) => i.into_js(ctx),
            Val::I64(i) => BigInt::from_i64(ctx.clone(), i).map(|b| b.into_value()),
            Val::F32(bits) => (f32::from_bits(bits) as f64).into_js(ctx),
            Val::F64(bits) => f64::from_bits(bits).into_js(ctx),
            Val::FuncRef(None) => Ok(JsValue::new_null(ctx.clone())),
            Val::FuncRef(Some(f)) => handle::exported_function(ctx, wasm, f, None),
            _ => Err(Exception::throw_type(
                ctx,
                "this WebAssembly value cannot be passed to JavaScript",
            )),
        },
    }
}

/// Results of a call as JavaScript sees them: nothing, one value, or an array.
pub(crate) fn results_to_js<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    results: Vec<Out>,
) -> rquickjs::Result<JsValue<'js>> {
    let mut results = results.into_iter();
    match results.len() {
        0 => Ok(JsValue::new_undefined(ctx.clone())),
        1 => match results.next() {
            Some(one) => out_to_js(ctx, wasm, one),
            None => Ok(JsValue::new_undefined(ctx.clone())),
        },
        _ => {
            let array = rquickjs::Array::new(ctx.clone())?;
            for (i, v) in results.enumerate() {
                array.set(i, out_to_js(ctx, wasm, v)?)?;
            }
            Ok(array.into_value())
        }
    }
}

/// The name JavaScript uses for a value type (`"i32"`, ..., `"anyfunc"`).
pub(crate) fn type_name(ty: &ValType) -> String {
    match ty {
        ValType::I32 => "i32".into(),
        ValType::I64 => "i64".into(),
        ValType::F32 => "f32".into(),
        ValType::F64 => "f64".into(),
        ValType::V128 => "v128".into(),
        ValType::Ref(r) if is_func(r.heap_type()) => "anyfunc".into(),
        ValType::Ref(r) if is_extern(r.heap_type()) => "externref".into(),
        ValType::Ref(r) => r.to_string(),
    }
}

/// The value type a JavaScript descriptor names.
pub(crate) fn parse_type(name: &str) -> Option<ValType> {
    Some(match name {
        "i32" => ValType::I32,
        "i64" => ValType::I64,
        "f32" => ValType::F32,
        "f64" => ValType::F64,
        "anyfunc" | "funcref" => ValType::FUNCREF,
        "externref" => ValType::EXTERNREF,
        _ => return None,
    })
}

/// The zero value of `ty` (what a global or result starts as).
pub(crate) fn default_of(ty: &ValType) -> Val {
    match ty {
        ValType::I32 => Val::I32(0),
        ValType::I64 => Val::I64(0),
        ValType::F32 => Val::F32(0),
        ValType::F64 => Val::F64(0),
        ValType::Ref(r) if is_extern(r.heap_type()) => Val::ExternRef(None),
        _ => Val::FuncRef(None),
    }
}
