//! `externref`: JavaScript values held by wasm. QuickJS values are not `Send`, and wasmtime's
//! externref host data must be, so an externref holds only a [`JsRef`], the index of a slot in
//! its isolate's [`Refs`] table, where the JavaScript value itself is kept. When wasm drops its
//! last reference to an externref, the collector frees the object and drops its `JsRef`, which
//! queues its slot; the isolate empties the queue (letting the JavaScript values go) at its
//! next safe point: the next externref made, and the end of every call from JavaScript into
//! wasm.
//!
//! Against a hostile module: every live slot is charged [`REF_BYTES`] to the isolate's memory
//! budget (the JavaScript value itself is on the JavaScript heap, which is counted already, and
//! the GC heap's growth is charged by the store's limiter like linear memory), so a module that
//! keeps JavaScript values alive cannot get past the memory limit; a refused externref is a
//! `RangeError` in the JavaScript that tried to make it.
//!
//! The collector is wasmtime's deferred reference counting (DRC): it frees an externref as soon
//! as its count drops to zero in a table or global, and those held only by wasm's stack at its
//! next collection. The null collector never frees (every JavaScript value wasm ever saw
//! would stay until the isolate goes), and the copying collector is not yet functional in
//! wasmtime 48. DRC cannot free cycles, but only the GC proposal (off here) can make them.

use std::sync::{Arc, Mutex};

use rquickjs::{Ctx, Persistent, Value as JsValue};
use wasmtime::{AsContext, AsContextMut, ExternRef, GcHeapOutOfMemory, Ref, Rooted, Val};

use crate::error::WasmError;
use crate::store::{StoreData, Wasm};

/// Bytes charged to the isolate for each JavaScript value wasm holds: the slot, the host data
/// box and wasmtime's entry for it (the GC heap object is charged with the GC heap).
pub const REF_BYTES: usize = 64;

/// After this many externrefs made since the last collection, a call from JavaScript that
/// returns runs the collector, so that references wasm dropped only from its stack (which the
/// deferred reference-counting collector finds only when it runs) let their JavaScript values
/// go promptly.
const COLLECT_EVERY: usize = 4096;

/// The host data of an externref made from a JavaScript value: the value's slot. Dropped by the
/// collector when wasm no longer holds the externref (or with the store).
pub(crate) struct JsRef {
    slot: u32,
    dropped: Arc<Mutex<Vec<u32>>>,
}

impl Drop for JsRef {
    fn drop(&mut self) {
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.slot);
    }
}

/// The JavaScript values wasm holds, by slot.
#[derive(Default)]
pub(crate) struct Refs {
    values: Vec<Option<Persistent<JsValue<'static>>>>,
    free: Vec<u32>,
    live: usize,
    made_since_collect: usize,
    /// Slots whose `JsRef` was dropped, filled from the collector (whatever thread it runs
    /// on, though it is always the isolate's).
    dropped: Arc<Mutex<Vec<u32>>>,
}

impl Refs {
    /// Takes every JavaScript value out (they are dropped by the caller, while the context is
    /// alive); returns how many were live.
    pub(crate) fn take_all(&mut self) -> (Vec<Persistent<JsValue<'static>>>, usize) {
        let live = std::mem::take(&mut self.live);
        self.free.clear();
        (
            std::mem::take(&mut self.values)
                .into_iter()
                .flatten()
                .collect(),
            live,
        )
    }
}

/// A JavaScript value on its way into wasm, as a value of a reference or numeric type.
pub(crate) enum Arg {
    /// A value needing no GC heap (a number, or a funcref).
    Val(Val),
    /// An externref: `None` is `ref.null extern`.
    Extern(Option<JsRef>),
}

impl Arg {
    /// The value in the store (an externref is allocated in the GC heap, rooted in the
    /// store's current scope). A full GC heap past the memory limit is a `RangeError`.
    pub(crate) fn into_val(
        self,
        mut cx: impl AsContextMut<Data = StoreData>,
    ) -> Result<Val, WasmError> {
        match self {
            Arg::Val(v) => Ok(v),
            Arg::Extern(None) => Ok(Val::ExternRef(None)),
            Arg::Extern(Some(r)) => Ok(Val::ExternRef(Some(new_extern(&mut cx, r)?))),
        }
    }

    /// The value as a table element.
    pub(crate) fn into_ref(
        self,
        cx: impl AsContextMut<Data = StoreData>,
    ) -> Result<Ref, WasmError> {
        match self.into_val(cx)? {
            Val::FuncRef(f) => Ok(Ref::Func(f)),
            Val::ExternRef(e) => Ok(Ref::Extern(e)),
            _ => Err(WasmError::Type(
                "a table element must be a reference".into(),
            )),
        }
    }
}

fn new_extern(
    mut cx: impl AsContextMut<Data = StoreData>,
    r: JsRef,
) -> Result<Rooted<ExternRef>, WasmError> {
    let mut cx = cx.as_context_mut();
    let limiter = &mut cx.data_mut().limiter;
    limiter.in_gc_heap = true;
    limiter.refusal = None;
    let made = ExternRef::new(&mut cx, r);
    let limiter = &mut cx.data_mut().limiter;
    limiter.in_gc_heap = false;
    let refused = limiter.refusal.take();
    made.map_err(|e| {
        if e.is::<GcHeapOutOfMemory<JsRef>>() {
            WasmError::Limit(refused.unwrap_or_else(|| {
                "the WebAssembly GC heap is full (the isolate's memory limit)".into()
            }))
        } else {
            WasmError::Limit(format!(
                "cannot make an externref: {}",
                crate::engine::error_chain(&e)
            ))
        }
    })
}

/// A wasm value on its way out to JavaScript, read from the store while its references are
/// still rooted.
pub(crate) enum Out {
    Val(Val),
    /// A JavaScript value held by wasm, or `None` for `ref.null extern`.
    Extern(Option<Persistent<JsValue<'static>>>),
}

impl Out {
    /// Reads `v` (its externref's JavaScript value) from the store.
    pub(crate) fn of(cx: impl AsContext, wasm: &Wasm, v: &Val) -> Result<Out, WasmError> {
        Ok(match v {
            Val::ExternRef(None) => Out::Extern(None),
            Val::ExternRef(Some(e)) => Out::Extern(Some(js_of(cx, wasm, e)?)),
            Val::AnyRef(_) | Val::ExnRef(_) | Val::ContRef(_) => {
                return Err(WasmError::Type(
                    "this WebAssembly reference cannot be passed to JavaScript".into(),
                ))
            }
            other => Out::Val(*other),
        })
    }

    /// Reads table element `r` from the store.
    pub(crate) fn of_ref(cx: impl AsContext, wasm: &Wasm, r: Ref) -> Result<Out, WasmError> {
        match r {
            Ref::Func(f) => Ok(Out::Val(Val::FuncRef(f))),
            Ref::Extern(e) => Self::of(cx, wasm, &Val::ExternRef(e)),
            _ => Err(WasmError::Type(
                "this WebAssembly reference cannot be passed to JavaScript".into(),
            )),
        }
    }
}

/// The JavaScript value externref `e` stands for.
fn js_of(
    cx: impl AsContext,
    wasm: &Wasm,
    e: &Rooted<ExternRef>,
) -> Result<Persistent<JsValue<'static>>, WasmError> {
    let data = e
        .data(&cx)
        .map_err(|err| WasmError::Type(crate::engine::error_chain(&err)))?;
    let slot = data
        .and_then(|d| d.downcast_ref::<JsRef>())
        .map(|r| r.slot)
        .ok_or_else(|| WasmError::Type("an externref not made by JavaScript".into()))?;
    wasm.held(slot).ok_or(WasmError::Gone)
}

impl Wasm {
    /// Keeps `v` for an externref: a slot charged to the isolate's memory budget. Runs the
    /// collector once if the budget is full, in case dropped references hold it.
    pub(crate) fn keep_ref<'js>(
        &self,
        ctx: &Ctx<'js>,
        v: JsValue<'js>,
    ) -> Result<JsRef, WasmError> {
        if self.is_cleared() {
            return Err(WasmError::Gone);
        }
        self.release_dropped();
        if !self.embedder().reserve(REF_BYTES) {
            self.collect()?;
            if !self.embedder().reserve(REF_BYTES) {
                return Err(WasmError::Limit(format!(
                    "an externref would exceed the isolate's memory limit of {} MiB \
                     (JavaScript heap and WebAssembly together)",
                    self.embedder().memory_limit() / (1024 * 1024)
                )));
            }
        }
        let mut refs = self.refs.borrow_mut();
        let value = Persistent::save(ctx, v);
        let slot = match refs.free.pop() {
            Some(slot) => {
                refs.values[slot as usize] = Some(value);
                slot
            }
            None => {
                let Ok(slot) = u32::try_from(refs.values.len()) else {
                    drop(refs);
                    self.embedder().release(REF_BYTES);
                    return Err(WasmError::Limit("too many externrefs".into()));
                };
                refs.values.push(Some(value));
                slot
            }
        };
        refs.live += 1;
        refs.made_since_collect += 1;
        Ok(JsRef {
            slot,
            dropped: refs.dropped.clone(),
        })
    }

    /// The JavaScript value in `slot`.
    fn held(&self, slot: u32) -> Option<Persistent<JsValue<'static>>> {
        self.refs
            .borrow()
            .values
            .get(slot as usize)
            .and_then(Clone::clone)
    }

    /// Lets go of the JavaScript values whose externrefs the collector freed.
    pub(crate) fn release_dropped(&self) {
        let dropped = {
            let refs = self.refs.borrow();
            let mut queue = refs.dropped.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *queue)
        };
        if dropped.is_empty() {
            return;
        }
        let mut freed = Vec::with_capacity(dropped.len());
        {
            let mut refs = self.refs.borrow_mut();
            for slot in dropped {
                if let Some(value) = refs.values.get_mut(slot as usize).and_then(Option::take) {
                    freed.push(value);
                    refs.free.push(slot);
                    refs.live -= 1;
                }
            }
        }
        self.embedder().release(freed.len() * REF_BYTES);
        // The values are dropped here, outside the borrow (dropping one can run no
        // JavaScript, but a finalizer's bookkeeping should not meet a borrowed table).
        drop(freed);
    }

    /// Runs the collector (frees the externrefs wasm dropped) and lets their values go.
    pub(crate) fn collect(&self) -> Result<(), WasmError> {
        self.refs.borrow_mut().made_since_collect = 0;
        self.with_store(|mut cx| cx.gc(None))?
            .map_err(|e| WasmError::Engine(crate::engine::error_chain(&e)))?;
        self.release_dropped();
        Ok(())
    }

    /// At the end of a call from JavaScript: lets dropped values go, and runs the collector if
    /// many externrefs were made since it last ran.
    pub(crate) fn after_call(&self) -> Result<(), WasmError> {
        if self.refs.borrow().made_since_collect >= COLLECT_EVERY && !self.is_running() {
            return self.collect();
        }
        self.release_dropped();
        Ok(())
    }

    /// How many JavaScript values wasm holds (live externrefs made from JavaScript), after
    /// running the collector so that none it could free is counted. Call it from outside
    /// JavaScript (it borrows the store).
    pub fn held_refs(&self) -> usize {
        if !self.is_cleared() && !self.is_running() {
            let _ = self.collect();
        }
        self.release_dropped();
        self.refs.borrow().live
    }
}
