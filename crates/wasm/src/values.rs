//! Values between JavaScript and wasm, as the JS API spec's ToWebAssemblyValue and ToJSValue
//! say: `i32` via ToInt32, `i64` via ToBigInt64 (a Number is a `TypeError`), `f32`/`f64` via
//! ToNumber, `funcref` as an exported function or `null`; `v128` and other references cannot
//! cross (`TypeError`).

use rquickjs::convert::Coerced;
use rquickjs::{qjs, BigInt, Class, Ctx, Exception, FromJs, IntoJs, Value as JsValue};
use wasmtime::{HeapType, Ref, Val, ValType};

use crate::handle::{self, ExportedFunction};
use crate::store::Wasm;

/// ToWebAssemblyValue(`v`, `ty`).
pub(crate) fn to_wasm<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    v: JsValue<'js>,
    ty: &ValType,
) -> rquickjs::Result<Val> {
    Ok(match ty {
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
        ValType::Ref(r) => {
            return Err(Exception::throw_type(
                ctx,
                &format!("WebAssembly values of type {r} are not supported"),
            ))
        }
    })
}

/// A table element from JavaScript (`null` or an exported function).
pub(crate) fn to_ref<'js>(ctx: &Ctx<'js>, wasm: &Wasm, v: &JsValue<'js>) -> rquickjs::Result<Ref> {
    Ok(Ref::Func(to_funcref(ctx, wasm, v, true)?))
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

/// ToJSValue(`v`).
pub(crate) fn to_js<'js>(ctx: &Ctx<'js>, wasm: &Wasm, v: &Val) -> rquickjs::Result<JsValue<'js>> {
    match v {
        Val::I32(i) => i.into_js(ctx),
        Val::I64(i) => BigInt::from_i64(ctx.clone(), *i).map(|b| b.into_value()),
        Val::F32(bits) => (f32::from_bits(*bits) as f64).into_js(ctx),
        Val::F64(bits) => f64::from_bits(*bits).into_js(ctx),
        Val::FuncRef(None) => Ok(JsValue::new_null(ctx.clone())),
        Val::FuncRef(Some(f)) => handle::exported_function(ctx, wasm, *f, None),
        _ => Err(Exception::throw_type(
            ctx,
            "this WebAssembly value cannot be passed to JavaScript",
        )),
    }
}

/// A table element as JavaScript sees it.
pub(crate) fn ref_to_js<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    r: Option<Ref>,
) -> rquickjs::Result<JsValue<'js>> {
    match r {
        None | Some(Ref::Func(None)) => Ok(JsValue::new_null(ctx.clone())),
        Some(Ref::Func(Some(f))) => handle::exported_function(ctx, wasm, f, None),
        Some(_) => Err(Exception::throw_type(
            ctx,
            "this WebAssembly reference cannot be passed to JavaScript",
        )),
    }
}

/// Results of a call as JavaScript sees them: nothing, one value, or an array.
pub(crate) fn results_to_js<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    results: &[Val],
) -> rquickjs::Result<JsValue<'js>> {
    match results {
        [] => Ok(JsValue::new_undefined(ctx.clone())),
        [one] => to_js(ctx, wasm, one),
        many => {
            let array = rquickjs::Array::new(ctx.clone())?;
            for (i, v) in many.iter().enumerate() {
                array.set(i, to_js(ctx, wasm, v)?)?;
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
        _ => Val::FuncRef(None),
    }
}
