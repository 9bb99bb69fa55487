//! How an isolate's limits are enforced, in one place: the memory [`Budget`] its JavaScript
//! heap ([`LimitedAllocator`]) and its WebAssembly memories ([`WasmLimits`]) share, and the
//! [`Stop`] check that both QuickJS's interrupt handler and running wasm ask.
//!
//! Against a malicious function: JavaScript heap plus wasm linear memory and tables never pass
//! the memory limit together (an allocation past it is refused, a `memory.grow` past it returns
//! `-1`); once the heap limit breaks, or the CPU deadline passes, both JavaScript and wasm are
//! stopped at their next check (QuickJS's interrupt counter, wasm's epoch tick), which neither
//! can catch or disable.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use rquickjs::allocator::{Allocator, RustAllocator};

use crate::cpu::CpuClock;

/// The memory one isolate may use: its JavaScript heap and its WebAssembly memories and tables,
/// against one limit.
#[derive(Default)]
pub(crate) struct Budget {
    /// The limit in bytes (0: none).
    pub(crate) limit: Cell<usize>,
    /// JavaScript heap in use, allocator overhead included.
    heap: Cell<usize>,
    /// Linear memory and table bytes WebAssembly holds.
    pub(crate) wasm: Cell<usize>,
    /// Set when the heap limit refused an allocation: the isolate is doomed.
    pub(crate) refused: Rc<Cell<bool>>,
}

impl Budget {
    fn fits(&self, extra: usize, grace: usize) -> bool {
        let limit = self.limit.get();
        limit == 0
            || self
                .heap
                .get()
                .checked_add(self.wasm.get())
                .and_then(|used| used.checked_add(extra))
                .is_some_and(|total| total <= limit.saturating_add(grace))
    }
}

/// When the running JavaScript or wasm must stop: its slice's CPU deadline passed (or its
/// invocation's CPU budget ran out), or the heap limit broke.
pub(crate) struct Stop {
    /// The running slice's deadline, on `cpu`.
    pub(crate) deadline: Rc<Cell<Option<Duration>>>,
    pub(crate) interrupted: Rc<Cell<bool>>,
    pub(crate) oom: Rc<Cell<bool>>,
    /// The clock CPU time is measured with (thread CPU time, see `cpu.rs`).
    pub(crate) cpu: Rc<CpuClock>,
}

impl Stop {
    /// Whether to stop now (notes a passed deadline as an interruption). Past the heap limit
    /// the isolate is doomed: its code is stopped at once, even if it caught the failure and
    /// goes on trying.
    pub(crate) fn now(&self) -> bool {
        if self.interrupted.get() || self.oom.get() {
            return true;
        }
        match self.deadline.get() {
            Some(d) if self.cpu.now() >= d => {
                self.interrupted.set(true);
                true
            }
            _ => false,
        }
    }
}

/// What the isolate's WebAssembly is told: stop when [`Stop`] says so, and charge memory to the
/// [`Budget`].
pub(crate) struct WasmLimits {
    pub(crate) budget: Rc<Budget>,
    pub(crate) stop: Rc<Stop>,
}

impl wasm::Embedder for WasmLimits {
    fn should_stop(&self) -> bool {
        self.stop.now()
    }

    fn reserve(&self, bytes: usize) -> bool {
        // A refused growth is not fatal (`memory.grow` returns -1), so `refused` is not set.
        if !self.budget.fits(bytes, 0) {
            return false;
        }
        self.budget
            .wasm
            .set(self.budget.wasm.get().saturating_add(bytes));
        true
    }

    fn release(&self, bytes: usize) {
        self.budget
            .wasm
            .set(self.budget.wasm.get().saturating_sub(bytes));
    }

    fn memory_limit(&self) -> usize {
        self.budget.limit.get()
    }

    fn charge_cpu(&self, spent: Duration) {
        self.stop.cpu.charge(spent);
    }
}

/// Headroom past the heap limit once it broke (see `LimitedAllocator::admit`).
const HEAP_GRACE: usize = 256 * 1024;

/// Bytes charged for each allocation on top of its usable size (the allocator's header).
const ALLOC_OVERHEAD: usize = 16;

/// Rust's global allocator with a heap limit: an allocation that would take the heap (plus
/// what WebAssembly holds) past the limit is refused and `refused` is set. QuickJS reacts to a
/// refused allocation in many ways (an "out of memory" error, a thrown `null` when even that
/// cannot be allocated, a failed internal operation), so the flag, not the error, tells that
/// the limit broke.
pub(crate) struct LimitedAllocator {
    pub(crate) budget: Rc<Budget>,
}

impl LimitedAllocator {
    /// Whether `extra` more bytes fit under the limit; if not, notes the refusal.
    fn admit(&mut self, extra: usize) -> bool {
        // Once the limit broke, a little headroom lets QuickJS build the uncatchable
        // "interrupted" error that stops the doomed isolate (without it, it throws a catchable
        // `null` that a retry loop would swallow).
        let grace = if self.budget.refused.get() {
            HEAP_GRACE
        } else {
            0
        };
        let fits = self.budget.fits(extra, grace);
        if !fits {
            self.budget.refused.set(true);
        }
        fits
    }

    fn charged(size: usize) -> usize {
        size.saturating_add(ALLOC_OVERHEAD)
    }

    fn add(&self, bytes: usize) {
        let heap = &self.budget.heap;
        heap.set(heap.get().saturating_add(bytes));
    }

    fn sub(&self, bytes: usize) {
        let heap = &self.budget.heap;
        heap.set(heap.get().saturating_sub(bytes));
    }

    fn track(&mut self, ptr: *mut u8) -> *mut u8 {
        if !ptr.is_null() {
            // SAFETY: `ptr` was just returned by `RustAllocator`.
            let size = unsafe { <RustAllocator as Allocator>::usable_size(ptr) };
            self.add(Self::charged(size));
        }
        ptr
    }
}

// SAFETY: every allocation is delegated to `RustAllocator`, which upholds the contract; this
// only refuses some (returning null, which is allowed) and counts the rest.
unsafe impl Allocator for LimitedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(Self::charged(size)) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.alloc(size);
        self.track(ptr)
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if !self.admit(Self::charged(total)) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.calloc(count, size);
        self.track(ptr)
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        // SAFETY: the caller passes a pointer from this allocator, i.e. from `RustAllocator`.
        let size = unsafe { <RustAllocator as Allocator>::usable_size(ptr) };
        self.sub(Self::charged(size));
        // SAFETY: as above.
        unsafe { RustAllocator.dealloc(ptr) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        // SAFETY: the caller passes a pointer from this allocator, i.e. from `RustAllocator`.
        let old = Self::charged(unsafe { <RustAllocator as Allocator>::usable_size(ptr) });
        let new = Self::charged(new_size);
        if new > old && !self.admit(new - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        let moved = unsafe { RustAllocator.realloc(ptr, new_size) };
        if !moved.is_null() {
            self.sub(old);
            self.track(moved);
        }
        moved
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: the caller passes a pointer from this allocator, i.e. from `RustAllocator`.
        unsafe { <RustAllocator as Allocator>::usable_size(ptr) }
    }
}
