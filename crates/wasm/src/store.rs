//! [`Wasm`]: the WebAssembly side of one isolate. It owns the isolate's wasmtime store (made on
//! first use), gives re-entrant access to it while wasm calls into JavaScript that calls wasm
//! again, keeps the JavaScript values wasm needs (imported functions, a pending exception,
//! the buffers over linear memory, the values held as externrefs), and charges memory to the
//! isolate through its [`Embedder`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};

use rquickjs::function::Constructor;
use rquickjs::{qjs, Ctx, Function, Object, Persistent, Value as JsValue};
use wasmtime::{AsContextMut, Caller, ResourceLimiter, Store, StoreContextMut, UpdateDeadline};

use crate::error::WasmError;
use crate::memory::Buffer;

/// What the isolate tells its WebAssembly: when to stop, and how much memory is left. This is
/// how the isolate's one place of limit enforcement reaches wasm.
pub trait Embedder {
    /// Whether running code must stop now (its CPU time is up, or a limit broke). Asked at
    /// every epoch tick while wasm runs, and before each call into wasm.
    fn should_stop(&self) -> bool;
    /// Charges `bytes` more of linear memory or table to the isolate, if they fit under its
    /// memory limit (with the JavaScript heap); returns whether they did.
    fn reserve(&self, bytes: usize) -> bool;
    /// Gives back `bytes` charged by [`Embedder::reserve`].
    fn release(&self, bytes: usize);
    /// The isolate's memory limit in bytes (0: none), for error messages.
    fn memory_limit(&self) -> usize;
    /// Charges `spent`, CPU time used on the compile threads while the running code waited
    /// (a synchronous `new WebAssembly.Module`), to the running code's CPU time.
    fn charge_cpu(&self, spent: std::time::Duration) {
        let _ = spent;
    }
}

/// Instances one isolate may create.
const MAX_INSTANCES: usize = 1000;
/// Linear memories one isolate may create (each reserves 4 GiB of address space).
const MAX_MEMORIES: usize = 16;
/// Tables one isolate may create.
const MAX_TABLES: usize = 1000;
/// Bytes charged per table element.
const TABLE_ELEMENT_BYTES: usize = 8;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The WebAssembly side of one isolate. Lives on the isolate's thread (it is `!Send`).
///
/// Call [`Wasm::clear`] before the JavaScript context goes (it drops the JavaScript values this
/// holds), and drop the `Wasm` after the JavaScript runtime (so linear memory outlives every
/// `ArrayBuffer` over it).
pub struct Wasm {
    pub(crate) id: u64,
    me: Weak<Wasm>,
    embedder: Rc<dyn Embedder>,
    store: RefCell<Option<Store<StoreData>>>,
    /// While wasm runs a JavaScript import: the caller through which nested code reaches the
    /// store (see [`Wasm::lend`]).
    caller: Cell<Option<NonNull<Caller<'static, StoreData>>>>,
    /// The JavaScript context this serves (set by [`crate::natives`]).
    ctx: Cell<Option<NonNull<qjs::JSContext>>>,
    js: RefCell<JsValues>,
    cleared: Cell<bool>,
    /// Linear memories made so far (they live as long as the store).
    memories: Cell<usize>,
    /// Modules compiled ahead of time (see [`Wasm::preload`]), with their bytes.
    preloaded: RefCell<Vec<(Vec<u8>, wasmtime::Module)>>,
    /// The JavaScript values wasm holds as externrefs (see `externref.rs`).
    pub(crate) refs: RefCell<crate::externref::Refs>,
}

impl std::fmt::Debug for Wasm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wasm")
            .field("id", &self.id)
            .field("store", &self.store.try_borrow().map(|s| s.is_some()).ok())
            .finish()
    }
}

/// The JavaScript values a [`Wasm`] keeps alive.
#[derive(Default)]
struct JsValues {
    /// JavaScript functions imported by instances, by index (host functions carry the index).
    imports: Vec<Persistent<Function<'static>>>,
    /// An exception a JavaScript import threw, on its way through wasm to the JavaScript caller.
    pending: Option<Persistent<JsValue<'static>>>,
    /// The `ArrayBuffer`s over linear memories.
    pub(crate) buffers: Vec<Buffer>,
    /// `CompileError`, `LinkError` and `RuntimeError`, by name.
    errors: HashMap<&'static str, Persistent<Constructor<'static>>>,
    /// `Function.prototype`, the prototype of exported functions.
    function_prototype: Option<Persistent<Object<'static>>>,
}

/// The data of the isolate's store.
pub(crate) struct StoreData {
    pub(crate) wasm: Weak<Wasm>,
    pub(crate) limiter: Limiter,
}

impl Wasm {
    /// A `Wasm` whose limits are enforced through `embedder`. Its store is made on first use.
    pub fn new(embedder: Rc<dyn Embedder>) -> Rc<Wasm> {
        Rc::new_cyclic(|me| Wasm {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            me: me.clone(),
            embedder,
            store: RefCell::new(None),
            caller: Cell::new(None),
            ctx: Cell::new(None),
            js: RefCell::default(),
            cleared: Cell::new(false),
            memories: Cell::new(0),
            preloaded: RefCell::default(),
            refs: RefCell::default(),
        })
    }

    /// Drops every JavaScript value this holds and detaches every `ArrayBuffer` over linear
    /// memory; afterwards every WebAssembly operation fails. Call it on the isolate's thread,
    /// while its context is alive.
    pub fn clear(&self, ctx: &Ctx<'_>) {
        self.cleared.set(true);
        let js = std::mem::take(&mut *self.js.borrow_mut());
        for buffer in js.buffers {
            buffer.detach(ctx);
        }
        drop(js.imports);
        drop(js.pending);
        drop(js.errors);
        drop(js.function_prototype);
        let (values, live) = self.refs.borrow_mut().take_all();
        drop(values);
        self.embedder.release(live * crate::externref::REF_BYTES);
        self.preloaded.borrow_mut().clear();
    }

    /// Keeps `module`, compiled ahead of time (off the JavaScript thread) from `bytes`: the
    /// next compilation of the same bytes in this isolate takes it instead of compiling.
    pub fn preload(&self, bytes: Vec<u8>, module: crate::CompiledModule) {
        self.preloaded.borrow_mut().push((bytes, module.0));
    }

    /// The module preloaded from `bytes`, if any (it is handed out once).
    pub(crate) fn take_preloaded(&self, bytes: &[u8]) -> Option<wasmtime::Module> {
        let mut preloaded = self.preloaded.borrow_mut();
        let i = preloaded.iter().position(|(b, _)| b.as_slice() == bytes)?;
        Some(preloaded.swap_remove(i).1)
    }

    /// Charges `bytes` the isolate holds outside its heap (bytes on their way to the compiler)
    /// to its memory budget, if they fit; returns whether they did.
    pub fn reserve(&self, bytes: usize) -> bool {
        self.embedder.reserve(bytes)
    }

    /// Gives back `bytes` charged by [`Wasm::reserve`].
    pub fn release(&self, bytes: usize) {
        self.embedder.release(bytes);
    }

    /// The handle of `module` in this isolate, which the JavaScript API's `wrapModule` turns
    /// into a `WebAssembly.Module`.
    pub fn module_handle<'js>(
        &self,
        ctx: &Ctx<'js>,
        module: crate::CompiledModule,
    ) -> rquickjs::Result<JsValue<'js>> {
        crate::handle::handle(ctx, self, crate::handle::Item::Module(module.0))
    }

    /// The JavaScript value `err` is thrown as (a `WebAssembly.CompileError`, a `RangeError`,
    /// ...), for rejecting a promise with it.
    pub fn error_value<'js>(&self, ctx: &Ctx<'js>, err: WasmError) -> JsValue<'js> {
        let _ = crate::error::throw(ctx, Some(self), err);
        ctx.catch()
    }

    pub(crate) fn weak(&self) -> Weak<Wasm> {
        self.me.clone()
    }

    /// Counts `n` more linear memories, if the isolate may make them. Each reserves address
    /// space (4 GiB plus a guard) until the isolate goes, whether or not it is used.
    pub(crate) fn count_memories(&self, n: usize) -> Result<(), WasmError> {
        let total = self.memories.get().saturating_add(n);
        if total > MAX_MEMORIES {
            return Err(WasmError::Limit(format!(
                "an isolate may make at most {MAX_MEMORIES} WebAssembly memories"
            )));
        }
        self.memories.set(total);
        Ok(())
    }

    /// Takes back `n` memories counted by [`Wasm::count_memories`] that were not made.
    pub(crate) fn uncount_memories(&self, n: usize) {
        self.memories.set(self.memories.get().saturating_sub(n));
    }

    pub(crate) fn embedder(&self) -> &dyn Embedder {
        &*self.embedder
    }

    /// Records the context this serves; host functions call JavaScript in it.
    pub(crate) fn set_ctx(&self, ctx: &Ctx<'_>) {
        self.ctx.set(Some(ctx.as_raw()));
    }

    pub(crate) fn ctx_ptr(&self) -> Option<NonNull<qjs::JSContext>> {
        self.ctx.get()
    }

    /// Runs `f` with the store: through the caller lent by the innermost JavaScript import
    /// running, if wasm is running, else by borrowing it (making it on first use). `f` must not
    /// run JavaScript other than through wasm calling its imports.
    pub(crate) fn with_store<R>(
        &self,
        f: impl FnOnce(StoreContextMut<'_, StoreData>) -> R,
    ) -> Result<R, WasmError> {
        if self.cleared.get() {
            return Err(WasmError::Gone);
        }
        if let Some(mut caller) = self.caller.get() {
            // SAFETY: `caller` was published by `lend` from a `&mut Caller` that stays mutably
            // borrowed (by the `Lent` guard) for as long as it is published, and it is
            // unpublished before that borrow ends. Everything here runs on one thread, and calls
            // nest strictly (a nested import lends its own caller and restores this one when it
            // returns), so no other reference to this caller is in use while this one is.
            let caller = unsafe { caller.as_mut() };
            return Ok(f(caller.as_context_mut()));
        }
        let mut slot = self.store.try_borrow_mut().map_err(|_| {
            WasmError::Type("WebAssembly is busy: a re-entrant call from outside an import".into())
        })?;
        let store = match &mut *slot {
            Some(store) => store,
            None => slot.insert(self.new_store()?),
        };
        Ok(f(store.as_context_mut()))
    }

    fn new_store(&self) -> Result<Store<StoreData>, WasmError> {
        let engine = crate::engine::engine()?;
        let data = StoreData {
            wasm: self.me.clone(),
            limiter: Limiter {
                embedder: self.embedder.clone(),
                charged: 0,
                growing: 0,
                refusal: None,
                grew: false,
                in_gc_heap: false,
            },
        };
        let mut store = Store::try_new(engine, data)
            .map_err(|e| WasmError::Limit(format!("cannot create a WebAssembly store: {e}")))?;
        store.limiter(|data| &mut data.limiter);
        store.epoch_deadline_callback(|cx| {
            Ok(if cx.data().limiter.embedder.should_stop() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Continue(1)
            })
        });
        store.set_epoch_deadline(1);
        Ok(store)
    }

    /// Publishes `caller` as the way to the store while a JavaScript import runs; the guard
    /// unpublishes it (restoring the one before) when dropped.
    pub(crate) fn lend<'a, 'c>(&'a self, caller: &'c mut Caller<'_, StoreData>) -> Lent<'a, 'c> {
        let ptr = NonNull::from(caller).cast::<Caller<'static, StoreData>>();
        let previous = self.caller.replace(Some(ptr));
        Lent {
            wasm: self,
            previous,
            _caller: PhantomData,
        }
    }

    /// Keeps a JavaScript function for a host function to call; returns its index.
    pub(crate) fn keep_import<'js>(&self, ctx: &Ctx<'js>, f: Function<'js>) -> usize {
        let mut js = self.js.borrow_mut();
        js.imports.push(Persistent::save(ctx, f));
        js.imports.len() - 1
    }

    /// The JavaScript function kept under `index`.
    pub(crate) fn import<'js>(
        &self,
        ctx: &Ctx<'js>,
        index: usize,
    ) -> rquickjs::Result<Function<'js>> {
        let saved = self.js.borrow().imports.get(index).cloned();
        match saved {
            Some(f) => f.restore(ctx),
            None => Err(rquickjs::Exception::throw_internal(
                ctx,
                "the isolate is shutting down",
            )),
        }
    }

    /// Keeps the exception a JavaScript import threw (catching it from `ctx`).
    pub(crate) fn keep_pending<'js>(&self, ctx: &Ctx<'js>, e: rquickjs::Error) {
        let thrown = if e.is_exception() {
            ctx.catch()
        } else {
            match rquickjs::Exception::from_message(ctx.clone(), &e.to_string()) {
                Ok(ex) => ex.into_value(),
                Err(_) => JsValue::new_undefined(ctx.clone()),
            }
        };
        self.js.borrow_mut().pending = Some(Persistent::save(ctx, thrown));
    }

    /// Takes the exception a JavaScript import threw.
    pub(crate) fn take_pending<'js>(&self, ctx: &Ctx<'js>) -> Option<JsValue<'js>> {
        let saved = self.js.borrow_mut().pending.take()?;
        saved.restore(ctx).ok()
    }

    /// Keeps the JavaScript error classes thrown for compile, link and runtime errors.
    pub(crate) fn set_error_class<'js>(
        &self,
        ctx: &Ctx<'js>,
        name: &'static str,
        c: Constructor<'js>,
    ) {
        self.js
            .borrow_mut()
            .errors
            .insert(name, Persistent::save(ctx, c));
    }

    /// The error class thrown for errors of kind `name` (`"CompileError"`, ...).
    pub(crate) fn error_class<'js>(&self, ctx: &Ctx<'js>, name: &str) -> Option<Constructor<'js>> {
        let saved = self.js.borrow().errors.get(name).cloned()?;
        saved.restore(ctx).ok()
    }

    pub(crate) fn set_function_prototype<'js>(&self, ctx: &Ctx<'js>, proto: Object<'js>) {
        self.js.borrow_mut().function_prototype = Some(Persistent::save(ctx, proto));
    }

    /// `Function.prototype` as it was when the natives were made.
    pub(crate) fn function_prototype<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
        let saved = self.js.borrow().function_prototype.clone();
        match saved {
            Some(p) => p.restore(ctx),
            None => Err(rquickjs::Exception::throw_internal(
                ctx,
                "the isolate is shutting down",
            )),
        }
    }

    /// Runs `f` on the buffers over linear memory.
    pub(crate) fn with_buffers<R>(&self, f: impl FnOnce(&mut Vec<Buffer>) -> R) -> R {
        f(&mut self.js.borrow_mut().buffers)
    }

    /// Whether this `Wasm` still runs code.
    pub(crate) fn is_cleared(&self) -> bool {
        self.cleared.get()
    }

    /// Whether wasm is on the stack (a JavaScript import it called is running).
    pub(crate) fn is_running(&self) -> bool {
        self.caller.get().is_some()
    }
}

/// The guard of a caller lent by [`Wasm::lend`]: it keeps the caller mutably borrowed (so the
/// host function cannot touch it while nested code may) and unpublishes it when dropped.
pub(crate) struct Lent<'a, 'c> {
    wasm: &'a Wasm,
    previous: Option<NonNull<Caller<'static, StoreData>>>,
    _caller: PhantomData<&'c mut ()>,
}

impl Drop for Lent<'_, '_> {
    fn drop(&mut self) {
        self.wasm.caller.set(self.previous);
    }
}

/// Charges linear memory and tables to the isolate, and remembers why growth was refused.
pub(crate) struct Limiter {
    embedder: Rc<dyn Embedder>,
    /// Bytes charged so far (given back when the store goes).
    charged: usize,
    /// Bytes charged for the growth under way, given back if it then fails.
    growing: usize,
    /// Why the last growth was refused (read after a failed instantiation).
    pub(crate) refusal: Option<String>,
    /// Set when a memory grew (so buffers over it must be replaced).
    pub(crate) grew: bool,
    /// Set while an externref is allocated: a memory growing then is the GC heap.
    pub(crate) in_gc_heap: bool,
}

// SAFETY: wasmtime asks a limiter to be `Send` so that a store can move between threads. This
// one lives in the data of a store owned by a `Wasm`, which is `!Send` (it holds `Rc`s) and
// never hands the store out, so the store and its limiter never leave the thread that made
// them; wasmtime calls the limiter synchronously, on the thread calling into the store.
unsafe impl Send for Limiter {}

impl Limiter {
    fn charge(&mut self, what: &str, current: usize, desired: usize, bytes: usize) -> bool {
        let extra = desired.saturating_sub(current).saturating_mul(bytes);
        if self.embedder.reserve(extra) {
            self.charged += extra;
            self.growing = extra;
            return true;
        }
        let limit = self.embedder.memory_limit();
        self.refusal = Some(format!(
            "{what} of {} bytes would exceed the isolate's memory limit of {} MiB \
             (JavaScript heap and WebAssembly memory together)",
            desired.saturating_mul(bytes),
            limit / (1024 * 1024)
        ));
        self.growing = 0;
        false
    }

    fn undo_growth(&mut self) {
        let extra = std::mem::take(&mut self.growing);
        self.charged -= extra;
        self.embedder.release(extra);
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let what = if self.in_gc_heap {
            "the WebAssembly GC heap"
        } else {
            "WebAssembly memory"
        };
        let ok = self.charge(what, current, desired, 1);
        if ok && desired > current && !self.in_gc_heap {
            self.grew = true;
        }
        Ok(ok)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo_growth();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.charge("a WebAssembly table", current, desired, TABLE_ELEMENT_BYTES))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo_growth();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.embedder.release(self.charged);
    }
}
