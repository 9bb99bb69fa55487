//! The JavaScript objects that hold wasmtime things: [`Handle`] (a module, memory, table or
//! global, kept in a private field of the JS API's wrapper classes), and
//! [`ExportedFunction`], the callable object a wasm function is in JavaScript. Both are Rust
//! classes, so JavaScript can neither forge one nor see inside it.

use std::rc::{Rc, Weak};

use rquickjs::class::{ClassKind, JsCell, JsClass, Readable, Trace, Tracer};
use rquickjs::function::{Constructor, Params};
use rquickjs::object::Property;
use rquickjs::{Class, Ctx, Exception, JsLifetime, Value as JsValue};
use wasmtime::{Func, FuncType, Global, Memory, Module, Table, ValType};

use crate::error::{OrThrow, WasmError};
use crate::store::Wasm;

/// What a [`Handle`] holds.
#[derive(Clone)]
pub(crate) enum Item {
    Module(Module),
    Memory(Memory),
    Global(Global),
    Table(Table),
}

/// A wasmtime object held by JavaScript.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "WebAssemblyHandle")]
pub(crate) struct Handle {
    /// The [`Wasm`] whose store the item lives in.
    #[qjs(skip_trace)]
    owner: u64,
    #[qjs(skip_trace)]
    item: Item,
}

/// Wraps `item` for JavaScript.
pub(crate) fn handle<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    item: Item,
) -> rquickjs::Result<JsValue<'js>> {
    Class::instance(
        ctx.clone(),
        Handle {
            owner: wasm.id,
            item,
        },
    )
    .map(|c| c.into_value())
}

/// The item in handle `v`, if `v` is a handle of `wasm` (throws nothing).
pub(crate) fn peek(wasm: &Wasm, v: &JsValue<'_>) -> Option<Item> {
    let handle = Class::<Handle>::from_value(v).ok()?;
    let handle = handle.borrow();
    (handle.owner == wasm.id).then(|| handle.item.clone())
}

/// The item in handle `v`, which must belong to `wasm`.
pub(crate) fn item<'js>(ctx: &Ctx<'js>, wasm: &Wasm, v: &JsValue<'js>) -> rquickjs::Result<Item> {
    peek(wasm, v)
        .ok_or_else(|| Exception::throw_type(ctx, "not a WebAssembly object of this isolate"))
}

macro_rules! item_getter {
    ($name:ident, $variant:ident, $ty:ty, $what:literal) => {
        /// The item in handle `v`, which must be of this kind.
        pub(crate) fn $name<'js>(
            ctx: &Ctx<'js>,
            wasm: &Wasm,
            v: &JsValue<'js>,
        ) -> rquickjs::Result<$ty> {
            match item(ctx, wasm, v)? {
                Item::$variant(x) => Ok(x),
                _ => Err(Exception::throw_type(ctx, concat!("not a ", $what))),
            }
        }
    };
}

item_getter!(module_of, Module, Module, "WebAssembly.Module");
item_getter!(memory_of, Memory, Memory, "WebAssembly.Memory");
item_getter!(global_of, Global, Global, "WebAssembly.Global");
item_getter!(table_of, Table, Table, "WebAssembly.Table");

/// An exported function's parameter and result types.
pub(crate) struct Signature {
    pub(crate) params: Vec<ValType>,
    pub(crate) results: Vec<ValType>,
}

/// A wasm function as JavaScript calls it (the spec's Exported Function).
pub(crate) struct ExportedFunction {
    pub(crate) owner: u64,
    wasm: Weak<Wasm>,
    pub(crate) func: Func,
    signature: Rc<Signature>,
}

// SAFETY: `ExportedFunction` holds no JavaScript values, so it has no lifetime to change.
unsafe impl<'js> JsLifetime<'js> for ExportedFunction {
    type Changed<'to> = ExportedFunction;
}

impl<'js> Trace<'js> for ExportedFunction {
    fn trace<'a>(&self, _tracer: Tracer<'a, 'js>) {}
}

impl<'js> JsClass<'js> for ExportedFunction {
    const NAME: &'static str = "WebAssemblyFunction";
    const KIND: ClassKind = ClassKind::Callable;
    type Mutable = Readable;

    fn constructor(_ctx: &Ctx<'js>) -> rquickjs::Result<Option<Constructor<'js>>> {
        Ok(None)
    }

    fn call<'a>(
        this: &JsCell<'js, Self>,
        params: Params<'a, 'js>,
    ) -> rquickjs::Result<JsValue<'js>> {
        let ctx = params.ctx().clone();
        let (wasm, func, signature) = {
            let me = this.borrow();
            (me.wasm.upgrade(), me.func, me.signature.clone())
        };
        let Some(wasm) = wasm else {
            return Err(crate::error::throw(&ctx, None, WasmError::Gone));
        };
        crate::call::call_export(&ctx, &wasm, func, &signature, &params)
    }
}

/// The JavaScript function for wasm function `func` (`ty` if known, else read from the store).
pub(crate) fn exported_function<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    func: Func,
    ty: Option<FuncType>,
) -> rquickjs::Result<JsValue<'js>> {
    let ty = match ty {
        Some(ty) => ty,
        None => wasm.with_store(|cx| func.ty(&cx)).or_throw(ctx, wasm)?,
    };
    let signature = Rc::new(Signature {
        params: ty.params().collect(),
        results: ty.results().collect(),
    });
    let arity = signature.params.len();
    let proto = wasm.function_prototype(ctx)?;
    let f = Class::instance_proto(
        ExportedFunction {
            owner: wasm.id,
            wasm: wasm.weak(),
            func,
            signature,
        },
        proto,
    )?;
    f.prop("length", Property::from(arity).configurable())?;
    f.prop("name", Property::from("").configurable())?;
    Ok(f.into_value())
}
