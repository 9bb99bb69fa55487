//! What an isolate is built from: its modules, its env, its outbound capability and its limits.

use std::time::Duration;

use capnweb::{Stub, Value};

/// One module of a function's module map.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ModuleSource {
    /// An ES module (`js` / `esModule`).
    EsModule(String),
    /// A CommonJS module (`cjs` / `commonJsModule`): its `module.exports` is the default export.
    CommonJs(String),
    /// A text module: the string is the default export.
    Text(String),
    /// A data module: an `ArrayBuffer` is the default export.
    Data(Vec<u8>),
    /// A JSON module: the parsed value is the default export.
    Json(String),
    /// A WebAssembly module: the default export is a `WebAssembly.Module` (compiled when the
    /// module is loaded, so invalid bytes are a load error).
    Wasm(Vec<u8>),
}

impl ModuleSource {
    /// The workerd name of this module type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ModuleSource::EsModule(_) => "esModule",
            ModuleSource::CommonJs(_) => "commonJsModule",
            ModuleSource::Text(_) => "text",
            ModuleSource::Data(_) => "data",
            ModuleSource::Json(_) => "json",
            ModuleSource::Wasm(_) => "wasm",
        }
    }

    /// Bytes of source, for budgeting.
    pub fn len(&self) -> usize {
        match self {
            ModuleSource::EsModule(s)
            | ModuleSource::CommonJs(s)
            | ModuleSource::Text(s)
            | ModuleSource::Json(s) => s.len(),
            ModuleSource::Data(b) | ModuleSource::Wasm(b) => b.len(),
        }
    }

    /// Whether the module is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Per-isolate resource limits.
///
/// Against a malicious function: it cannot hold more than `memory_bytes` of JavaScript heap and
/// WebAssembly memory together (a heap allocation past it fails, the call is rejected with
/// `ResourceLimitError` and the isolate is discarded; a `memory.grow` past it returns -1, a
/// `WebAssembly.Memory` or instantiation past it throws a `RangeError`); one invocation cannot run JavaScript for longer than `cpu_time` in total, across
/// all its awaits, nor can any single run of JavaScript last longer than that — the deadline
/// is checked by QuickJS's interrupt handler, which JavaScript cannot catch or disable, and by
/// wasm's epoch check, compiled into every loop and function — after which the call is
/// rejected and the isolate discarded; and it cannot recurse past `max_stack_bytes` (a
/// catchable `InternalError`, no crash; in wasm, a `RuntimeError` past
/// `wasm::MAX_WASM_STACK`). What an invocation leaves running after it answered runs on the
/// same CPU budget and is bounded in time (`wait_until`, `wall_time`) and number
/// (`max_timers`); see `background.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit: JavaScript heap plus WebAssembly linear memories (their accessible
    /// size, 64 KiB per page), tables (8 bytes per element), GC heap and JavaScript values
    /// held as externrefs ([`crate::REF_BYTES`] each). Not counted: compiled wasm code
    /// (shared by every isolate through the per-process compile cache) and wasmtime's
    /// bookkeeping per instance. Default 128 MiB.
    pub memory_bytes: usize,
    /// CPU time one invocation may use, summed over every slice of JavaScript that runs for
    /// it (the call itself, and each continuation after an await on a timer, an RPC result or
    /// another event, before and after it answered: timers it left, `ctx.waitUntil` work);
    /// also the longest any single slice may run. Measured as CPU time of the thread that runs
    /// the slice (not wall-clock time, so sharing the cores with other isolates costs nothing),
    /// plus the time WebAssembly compilation took for it on the compile threads. Default 1 s.
    pub cpu_time: Duration,
    /// Native stack QuickJS may use. Default 1 MiB.
    pub max_stack_bytes: usize,
    /// How long work an invocation handed to `ctx.waitUntil` may go on after it answered;
    /// then whatever it left running is cancelled (unless a held capability it was called on
    /// keeps it). Default 30 s.
    pub wait_until: Duration,
    /// Wall-clock time an invocation may take to answer (queueing on its thread included);
    /// past it the caller gets a `ResourceLimitError` and everything the invocation left
    /// running is cancelled. The isolate is kept. Default 60 s.
    pub wall_time: Duration,
    /// Timers (`setTimeout`, `setInterval`) one isolate may have pending at once; one more
    /// throws a `RangeError`. Default 10,000.
    pub max_timers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 * 1024 * 1024,
            cpu_time: Duration::from_millis(1000),
            max_stack_bytes: 1024 * 1024,
            wait_until: Duration::from_secs(30),
            wall_time: Duration::from_secs(60),
            max_timers: 10_000,
        }
    }
}

/// Everything an [`Isolate`](crate::Isolate) is built from.
#[derive(Debug, Clone)]
pub struct IsolateConfig {
    /// The function id: tags logs and metrics.
    pub id: String,
    /// The module map, by name (`"index.js"`, `"./lib/util.js"`, ...).
    pub modules: Vec<(String, ModuleSource)>,
    /// The module evaluated first; its exports are the entrypoints.
    pub main_module: String,
    /// The `env` object handed to entrypoints: plain values (vars) and stubs (bindings).
    pub env: Value,
    /// What the global `fetch()` calls (`outbound.fetch(request)`). `None`: no network.
    pub global_outbound: Option<Stub>,
    /// Resource limits.
    pub limits: Limits,
    /// The budget of calls in flight this isolate shares with its group (a parent's
    /// children), or `None` for no budget. See [`CallBudget`](crate::CallBudget).
    pub call_budget: Option<std::sync::Arc<crate::CallBudget>>,
}

impl IsolateConfig {
    /// A config with one ES module as the main module, an empty env and default limits.
    pub fn single(id: impl Into<String>, source: impl Into<String>) -> Self {
        IsolateConfig {
            id: id.into(),
            modules: vec![("index.js".into(), ModuleSource::EsModule(source.into()))],
            main_module: "index.js".into(),
            env: Value::Object(Default::default()),
            global_outbound: None,
            limits: Limits::default(),
            call_budget: None,
        }
    }
}
