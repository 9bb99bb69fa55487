//! `WebAssembly.Memory.prototype.buffer`: an `ArrayBuffer` over a linear memory itself (no
//! copy), replaced after the memory grows. The spec's rule — growing detaches the old buffer —
//! is kept at every point JavaScript can look: after each call into wasm returns, before each
//! JavaScript import runs, and after `Memory.prototype.grow`.

use rquickjs::{ArrayBuffer, ArrayBufferSource, Ctx, Persistent};
use wasmtime::Memory;

use crate::error::WasmError;
use crate::store::Wasm;

/// The bytes of a linear memory an `ArrayBuffer` shows: `len` bytes at `ptr`.
struct LinearMemory {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: `ptr..ptr + len` is the accessible part of a linear memory, valid for reads and
// writes for as long as its store lives: the engine is configured with
// `memory_may_move(false)`, so the base never moves, and linear memory never shrinks. The
// store lives in a `Wasm` that the isolate drops only after its JavaScript runtime (so after
// every ArrayBuffer, and with it every `LinearMemory`, is gone), and `Wasm::clear` detaches
// every buffer it made before that. Wasm code and JavaScript never run at the same time (one
// thread), and Rust never holds a reference into linear memory across JavaScript.
unsafe impl ArrayBufferSource for LinearMemory {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// One `ArrayBuffer` over a linear memory, and the size it was made for.
pub(crate) struct Buffer {
    base: usize,
    memory: Memory,
    size: usize,
    buffer: Persistent<ArrayBuffer<'static>>,
}

impl Buffer {
    /// Detaches the buffer: views over it become empty.
    pub(crate) fn detach(self, ctx: &Ctx<'_>) {
        if let Ok(mut buffer) = self.buffer.restore(ctx) {
            buffer.detach();
        }
    }
}

/// The `ArrayBuffer` over `memory`: the one made before if the memory has not grown since.
pub(crate) fn buffer<'js>(
    ctx: &Ctx<'js>,
    wasm: &Wasm,
    memory: Memory,
) -> Result<ArrayBuffer<'js>, WasmError> {
    refresh(ctx, wasm)?;
    let (ptr, size) = wasm.with_store(|cx| (memory.data_ptr(&cx), memory.data_size(&cx)))?;
    let base = ptr as usize;
    let cached = wasm.with_buffers(|buffers| {
        buffers
            .iter()
            .find(|b| b.base == base && b.size == size)
            .map(|b| b.buffer.clone())
    });
    if let Some(saved) = cached {
        return saved.restore(ctx).map_err(|_| WasmError::Gone);
    }
    let buffer = ArrayBuffer::from_source(ctx.clone(), LinearMemory { ptr, len: size })
        .map_err(|e| WasmError::Limit(format!("cannot make the memory's ArrayBuffer: {e}")))?;
    let entry = Buffer {
        base,
        memory,
        size,
        buffer: Persistent::save(ctx, buffer.clone()),
    };
    let old = wasm.with_buffers(|buffers| {
        let old = buffers
            .iter()
            .position(|b| b.base == base)
            .map(|i| buffers.swap_remove(i));
        buffers.push(entry);
        old
    });
    if let Some(old) = old {
        old.detach(ctx);
    }
    Ok(buffer)
}

/// Detaches the buffers over memories that grew since they were made.
pub(crate) fn refresh(ctx: &Ctx<'_>, wasm: &Wasm) -> Result<(), WasmError> {
    let grew = wasm.with_store(|mut cx| std::mem::take(&mut cx.data_mut().limiter.grew))?;
    if !grew {
        return Ok(());
    }
    let memories: Vec<Memory> = wasm.with_buffers(|b| b.iter().map(|b| b.memory).collect());
    if memories.is_empty() {
        return Ok(());
    }
    let sizes: Vec<usize> =
        wasm.with_store(|cx| memories.iter().map(|m| m.data_size(&cx)).collect())?;
    // The list is the same as when `memories` was taken: nothing ran in between.
    let stale: Vec<Buffer> = wasm.with_buffers(|buffers| {
        let (keep, stale): (Vec<_>, Vec<_>) = std::mem::take(buffers)
            .into_iter()
            .zip(sizes)
            .partition(|(b, size)| b.size == *size);
        *buffers = keep.into_iter().map(|(b, _)| b).collect();
        stale.into_iter().map(|(b, _)| b).collect()
    });
    for buffer in stale {
        buffer.detach(ctx);
    }
    Ok(())
}
