//! The process-wide wasmtime [`Engine`], the ticker thread that advances its epoch, and a
//! cache of compiled modules so that every isolate of a function does not compile the same
//! bytes again. Compiling itself happens on the compile threads (`compile.rs`).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::{Collector, Config, Engine, Module};

use crate::error::WasmError;

/// How often the epoch advances: running wasm checks its embedder's deadline at least this
/// often, so it overruns a CPU limit by at most about one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Native stack wasm code may use; recursing deeper traps with "call stack exhausted".
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// Module bytes the compile cache keeps at most (the sum of the cached modules' sizes).
const CACHE_BYTES: usize = 64 * 1024 * 1024;

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The engine, made (and its ticker started) on first use.
pub(crate) fn engine() -> Result<&'static Engine, WasmError> {
    ENGINE
        .get_or_init(new_engine)
        .as_ref()
        .map_err(|e| WasmError::Engine(e.clone()))
}

fn new_engine() -> Result<Engine, String> {
    let mut config = Config::new();
    config
        // Every loop header and function entry checks the epoch: the CPU limit's hook.
        .epoch_interruption(true)
        // Linear memory is reserved once and never moves, so an ArrayBuffer over it stays
        // valid; growth past the reservation fails (memory.grow returns -1).
        .memory_may_move(false)
        .max_wasm_stack(MAX_WASM_STACK)
        // `externref` (reference types): wasm-bindgen's output uses it. An externref is an
        // object in the store's GC heap; the deferred reference-counting collector frees one as
        // soon as wasm drops its last table, global or stack reference (stack references at the
        // next collection), which is what releases the JavaScript value it stands for. The null
        // collector never frees (every JavaScript value wasm ever saw would stay alive until the
        // isolate goes), and the copying collector is not yet functional in this wasmtime. The
        // GC proposal itself (structs, arrays, `anyref`) stays off: nothing but externref
        // allocates in the GC heap, so DRC's one weakness, cycles, cannot arise. Exceptions
        // (whose exnref objects live in the GC heap too) stay off as before.
        .wasm_reference_types(true)
        .wasm_gc(false)
        .wasm_exceptions(false)
        .collector(Collector::DeferredReferenceCounting);
    let engine = Engine::new(&config).map_err(|e| e.to_string())?;
    let ticking = engine.clone();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            ticking.increment_epoch();
        })
        .map_err(|e| format!("cannot start the epoch ticker thread: {e}"))?;
    Ok(engine)
}

/// Checks that `bytes` are a valid module for this engine (`WebAssembly.validate`). A module
/// past the size cap is not (this engine would refuse to compile it).
pub fn validate(bytes: &[u8]) -> Result<bool, WasmError> {
    if crate::compile::check_size(bytes.len()).is_err() {
        return Ok(false);
    }
    Ok(Module::validate(engine()?, bytes).is_ok())
}

/// The module compiled before from the same bytes, if the cache still has it.
pub(crate) fn cached(bytes: &[u8]) -> Result<Option<Module>, WasmError> {
    engine()?;
    let key = cache().hasher.hash_one(bytes);
    Ok(cache().get(key, bytes))
}

/// Compiles `bytes` (binary format only, never text) on the calling thread, or returns the
/// module compiled before from the same bytes. Only the compile threads call this (see
/// `compile.rs`).
pub(crate) fn compile_here(bytes: &[u8]) -> Result<Module, WasmError> {
    let engine = engine()?;
    let key = cache().hasher.hash_one(bytes);
    if let Some(module) = cache().get(key, bytes) {
        return Ok(module);
    }
    let module = Module::from_binary(engine, bytes)
        .map_err(|e| WasmError::Compile(format!("WebAssembly.Module(): {}", error_chain(&e))))?;
    cache().put(key, bytes, module.clone());
    Ok(module)
}

/// An error and its causes, on one line.
pub(crate) fn error_chain(e: &wasmtime::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        out.push_str(": ");
        out.push_str(&cause.to_string());
    }
    out
}

/// Compiled modules by the hash of their bytes (a keyed hash: the key is random per process,
/// and a hit is only taken when the bytes are equal too).
struct Cache {
    hasher: RandomState,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    modules: HashMap<u64, (Arc<[u8]>, Module)>,
    /// Insertion order, for eviction.
    order: VecDeque<u64>,
    bytes: usize,
}

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Cache {
        hasher: RandomState::new(),
        inner: Mutex::default(),
    })
}

impl Cache {
    fn get(&self, key: u64, bytes: &[u8]) -> Option<Module> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.modules.get(&key) {
            Some((b, m)) if **b == *bytes => Some(m.clone()),
            _ => None,
        }
    }

    fn put(&self, key: u64, bytes: &[u8], module: Module) {
        if bytes.len() > CACHE_BYTES / 4 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.modules.contains_key(&key) {
            return;
        }
        while inner.bytes + bytes.len() > CACHE_BYTES {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some((b, _)) = inner.modules.remove(&old) {
                inner.bytes -= b.len();
            }
        }
        inner.bytes += bytes.len();
        inner.order.push_back(key);
        inner.modules.insert(key, (Arc::from(bytes), module));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32)
        local.get 0 local.get 1 i32.add))"#;

    #[test]
    fn the_same_bytes_compile_once() {
        let bytes = wat::parse_str(ADD).expect("valid wat");
        let a = crate::compile(&bytes).expect("compiles");
        let b = crate::compile(&bytes).expect("compiles");
        assert!(Module::same(&a, &b));
        assert!(validate(&bytes).expect("engine"));
    }

    #[test]
    fn text_and_garbage_are_compile_errors() {
        assert!(matches!(
            crate::compile(ADD.as_bytes()),
            Err(WasmError::Compile(_))
        ));
        assert!(matches!(
            crate::compile(&[0, 97, 115, 109]),
            Err(WasmError::Compile(_))
        ));
        assert!(!validate(b"nope").expect("engine"));
    }
}
