//! The per-isolate host on its JavaScript thread: the registries that keep JavaScript objects
//! alive while Rust holds capabilities to them, the calls waiting for JavaScript to settle,
//! the promises JavaScript waits on while Rust works (`settle_later`), and the entry points
//! the rest of the crate uses to run JavaScript (invoke a method, read a property, call the
//! fetch handler, fire a timer). What each invocation owns and how long its background work
//! may go on is `background.rs`'s job.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use capnweb::{RpcError, Value};
use rquickjs::{Array, Ctx, Exception, Function, Object, Persistent, Promise, Value as JsValue};
use tokio::sync::oneshot;

use crate::background::{Background, Ended, TimerError, Verdict};
use crate::bridge;
use crate::config::{IsolateConfig, Limits};
use crate::error::{resource_limit_error, LoadError};
use crate::state::Shared;
use crate::target::TargetRef;

/// What a main module offers, found when it loads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Surface {
    /// The default export has an `rpc` class (the seed's convention).
    pub(crate) rpc: bool,
    /// The default export (an object, or a class's prototype) has a `fetch` handler.
    pub(crate) fetch: bool,
    /// The default export (an object, or a class's prototype) has an `authenticate` hook.
    pub(crate) authenticate: bool,
}

/// A reply channel for one call into JavaScript.
pub(crate) type Reply = oneshot::Sender<Result<Value, RpcError>>;

type Saved = Persistent<JsValue<'static>>;

/// What JavaScript is told when it waits on the host outside any invocation.
const GLOBAL_SCOPE_IO: &str = "Disallowed operation called within global scope: waiting on an RPC result or a stream works only while handling a request (inside a handler)";

/// What a call into a JavaScript object does.
pub(crate) enum Op {
    /// Calls a method (`""`: the object is a function and is called itself).
    Call(String, Vec<Value>),
    /// Reads a property (a getter).
    Get(String),
}

/// A capnweb stream fed from JavaScript: its writing end, the isolate it keeps alive, and the
/// invocation that feeds it.
type Sender = (capnweb::StreamSender, Arc<Shared>, Option<u64>);

/// One isolate's host state. Lives on the isolate's thread only.
///
/// A host is built blank (web APIs and bridge installed, no function yet: see
/// [`Host::prepare`]) and then claimed by one function ([`Host::claim`], [`Host::start`]). A
/// blank host never runs user code, so a spare one can be built ahead of time.
pub(crate) struct Host {
    id: RefCell<String>,
    shared: RefCell<Weak<Shared>>,
    limits: Cell<Limits>,
    started: Cell<Instant>,
    /// Set by the interrupt handler when a deadline passed, or when an invocation used up its
    /// CPU budget.
    interrupted: Rc<Cell<bool>>,
    /// When the running slice of JavaScript must stop (read by the interrupt handler), on `cpu`.
    deadline: Rc<Cell<Option<Duration>>>,
    /// The running slice: when it started (on `cpu`) and which invocation it runs for.
    slice: Cell<Option<(Duration, Option<u64>)>>,
    /// The clock CPU time is measured with (thread CPU time, see `cpu.rs`).
    cpu: Rc<crate::cpu::CpuClock>,
    /// Every invocation still going: the CPU it used, its trace (current while JavaScript
    /// runs for it) and the background work it owns (timers, promises waiting on capnweb).
    background: Background,
    /// Set when an allocation was refused because the heap limit was reached (shared with the
    /// runtime's allocator, see `state::LimitedAllocator`).
    oom: Rc<Cell<bool>>,
    helpers: RefCell<Option<Saved>>,
    web: RefCell<Option<Saved>>,
    namespace: RefCell<Option<Saved>>,
    env: RefCell<Option<Saved>>,
    ctx_obj: RefCell<Option<Saved>>,
    /// JavaScript objects that capabilities point at, by slot id.
    objects: RefCell<HashMap<u64, Saved>>,
    /// Calls waiting for JavaScript to settle them, by call id.
    replies: RefCell<HashMap<u64, Reply>>,
    /// The isolate's WebAssembly, and its JavaScript API once built (on first use of the
    /// `WebAssembly` global or of a `.wasm` module).
    wasm: Rc<wasm::Wasm>,
    wasm_api: RefCell<Option<Saved>>,
    /// Set when a native function panicked and JavaScript saw the panic as QuickJS's
    /// exception marker (see `Unit::run`, which then resumes the panic).
    panicked: Cell<bool>,
    /// Capnweb streams fed from JavaScript streams, by id, with the invocation that feeds
    /// each. Each holds the isolate alive until its stream ends.
    senders: RefCell<HashMap<u64, Sender>>,
    /// Open WebSockets the function accepted, by slot (the slot holds the JavaScript end).
    sockets: RefCell<HashMap<u64, crate::socket::SocketEntry>>,
    /// capnweb sessions the function runs over its WebSockets (the `capnweb` module).
    rpc_sessions: RefCell<crate::capnweb_js::Sessions>,
    /// The function's `globalOutbound`, if it was given one.
    outbound: RefCell<Option<capnweb::Stub>>,
}

impl Host {
    /// A blank host whose limits are enforced through `stop` (shared with the runtime's
    /// interrupt handler, its allocator and its WebAssembly).
    pub(crate) fn new(stop: &crate::limits::Stop, wasm: Rc<wasm::Wasm>) -> Self {
        let interrupted = stop.interrupted.clone();
        let deadline = stop.deadline.clone();
        let cpu = stop.cpu.clone();
        let oom = stop.oom.clone();
        Host {
            id: RefCell::new(String::new()),
            shared: RefCell::new(Weak::new()),
            limits: Cell::new(Limits::default()),
            started: Cell::new(Instant::now()),
            interrupted,
            deadline,
            slice: Cell::new(None),
            cpu,
            background: Background::default(),
            oom,
            helpers: RefCell::default(),
            web: RefCell::default(),
            namespace: RefCell::default(),
            env: RefCell::default(),
            ctx_obj: RefCell::default(),
            objects: RefCell::default(),
            replies: RefCell::default(),
            wasm,
            wasm_api: RefCell::default(),
            panicked: Cell::new(false),
            senders: RefCell::default(),
            sockets: RefCell::default(),
            rpc_sessions: RefCell::default(),
            outbound: RefCell::default(),
        }
    }

    /// Gives a blank host to one function.
    pub(crate) fn claim(&self, shared: &Arc<Shared>, limits: Limits) {
        *self.id.borrow_mut() = shared.id.clone();
        *self.shared.borrow_mut() = Arc::downgrade(shared);
        self.limits.set(limits);
        self.started.set(Instant::now());
    }

    /// The function id.
    pub(crate) fn id(&self) -> std::cell::Ref<'_, String> {
        self.id.borrow()
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits.get()
    }

    pub(crate) fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.borrow().upgrade()
    }

    /// Starts a slice of JavaScript (one job and the microtasks it queues): it may run for at
    /// most the CPU limit.
    pub(crate) fn begin_slice(&self) {
        let now = self.cpu.now();
        self.slice.set(Some((now, None)));
        self.deadline.set(Some(now + self.limits().cpu_time));
        capnweb::trace::set(None);
    }

    /// Says which invocation the running slice works for: the slice's time is charged to it,
    /// and the slice stops when the invocation's CPU budget (across all its slices) runs out.
    pub(crate) fn enter(&self, invocation: Option<u64>) {
        let (Some((start, _)), Some(id)) = (self.slice.get(), invocation) else {
            return;
        };
        capnweb::trace::set(self.background.trace(id));
        let Some(used) = self.background.used(id) else {
            return;
        };
        self.slice.set(Some((start, Some(id))));
        let left = self.limits().cpu_time.saturating_sub(used);
        let until = start + left;
        if self.deadline.get().is_none_or(|d| until < d) {
            self.deadline.set(Some(until));
        }
    }

    /// The invocation the running slice works for, if known.
    pub(crate) fn current(&self) -> Option<u64> {
        self.slice.get().and_then(|(_, id)| id)
    }

    /// Ends the slice: charges its time to its invocation, and breaks the CPU limit if that
    /// used up the invocation's budget.
    pub(crate) fn end_slice(&self) {
        self.deadline.set(None);
        capnweb::trace::set(None);
        let Some((start, Some(id))) = self.slice.take() else {
            return;
        };
        let elapsed = self.cpu.now().saturating_sub(start);
        if let Some(used) = self.background.charge(id, elapsed) {
            if used >= self.limits().cpu_time {
                self.interrupted.set(true);
            }
        }
    }

    /// Starts invocation `id` (a call from outside, made on the capability in slot `scope`
    /// if any): it gets a reply and a CPU budget, and the running slice works for it. Then
    /// runs `begin`, the JavaScript that starts it; an error there answers the call at once.
    fn start_invocation<'js>(
        &self,
        ctx: &Ctx<'js>,
        id: u64,
        reply: Reply,
        trace: Option<capnweb::trace::TraceId>,
        scope: Option<u64>,
        begin: impl FnOnce() -> rquickjs::Result<()>,
    ) {
        self.replies.borrow_mut().insert(id, reply);
        self.background.begin(id, trace, scope);
        capnweb::trace::set(trace);
        if let Some((start, _)) = self.slice.get() {
            self.slice.set(Some((start, Some(id))));
        }
        if let Err(e) = begin() {
            let err = self.rpc_error(ctx, e);
            self.settle(id, Err(err));
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.shared().map_or(0, |s| s.next_id())
    }

    pub(crate) fn elapsed_ms(&self) -> f64 {
        self.started.get().elapsed().as_secs_f64() * 1000.0
    }

    /// Notes that a native function panicked: the isolate is marked broken at once (so no
    /// caller reaches it again) and the panic is resumed when the job ends. Returns the error
    /// the call sees.
    fn note_panic(&self) -> RpcError {
        self.panicked.set(true);
        let reason = format!("internal error; isolate '{}' was discarded", self.id());
        if let Some(shared) = self.shared() {
            shared.set_internal(reason.clone());
        }
        crate::error::internal_error(reason)
    }

    /// Whether a native panicked during this job (and clears the note).
    pub(crate) fn take_panicked(&self) -> bool {
        self.panicked.replace(false)
    }

    /// Charges `spent`, time spent off the JavaScript thread for invocation `owner` (compiling
    /// WebAssembly), to its CPU budget; the CPU limit breaks if that uses the budget up.
    pub(crate) fn charge(&self, owner: u64, spent: Duration) {
        if let Some(used) = self.background.charge(owner, spent) {
            if used >= self.limits().cpu_time {
                self.interrupted.set(true);
            }
        }
    }

    /// The reason the isolate must be discarded, if a limit broke.
    /// The shared handle is marked broken at once, before any caller can see the error, so
    /// a caller that retries never reaches the same isolate.
    pub(crate) fn limit_broken(&self) -> Option<String> {
        let reason = self.limit_reason();
        if let (Some(r), Some(shared)) = (&reason, self.shared()) {
            if shared.broken().is_none() {
                shared.set_broken(r.clone());
            }
        }
        reason
    }

    fn limit_reason(&self) -> Option<String> {
        // The heap limit first: once it broke, the isolate is doomed even if its code caught
        // the failure and went on until the CPU limit stopped it.
        if self.oom.get() {
            Some(format!(
                "JavaScript heap memory limit {} MiB exceeded",
                self.limits().memory_bytes / (1024 * 1024)
            ))
        } else if self.interrupted.get() {
            Some(format!(
                "CPU time limit of {} ms exceeded",
                self.limits().cpu_time.as_millis()
            ))
        } else {
            None
        }
    }

    /// Installs the web APIs and the bridge (no user code runs).
    pub(crate) fn prepare<'js>(self: &Rc<Self>, ctx: &Ctx<'js>) -> Result<(), LoadError> {
        let natives = crate::natives::install(ctx, Rc::downgrade(self))
            .map_err(|e| LoadError::Runtime(self.describe_error(ctx, e)))?;
        let setup = || -> rquickjs::Result<()> {
            let web_fn = crate::bytecode::web(ctx)?;
            let web: Object<'js> = web_fn.call((natives.clone(),))?;
            let prelude_fn = crate::bytecode::prelude(ctx)?;
            let helpers: Object<'js> = prelude_fn.call((natives, web.clone()))?;
            *self.web.borrow_mut() = Some(Persistent::save(ctx, web.into_value()));
            *self.helpers.borrow_mut() = Some(Persistent::save(ctx, helpers.into_value()));
            let ctx_obj: JsValue<'js> = self.helper(ctx, "makeCtx")?.call(())?;
            *self.ctx_obj.borrow_mut() = Some(Persistent::save(ctx, ctx_obj));
            Ok(())
        };
        setup().map_err(|e| LoadError::Runtime(self.describe_error(ctx, e)))
    }

    /// Hands the env over and evaluates the main module of a claimed host. Returns whether the
    /// default export has an `rpc` class.
    pub(crate) fn start<'js>(
        self: &Rc<Self>,
        ctx: &Ctx<'js>,
        config: &IsolateConfig,
    ) -> Result<Surface, LoadError> {
        self.web_fn(ctx, "resetClock")
            .and_then(|f| f.call::<_, ()>(()))
            .map_err(|e| LoadError::Runtime(self.describe_error(ctx, e)))?;
        let env = bridge::to_js(self, ctx, &config.env)
            .map_err(|e| LoadError::Env(self.describe_error(ctx, e)))?;
        *self.outbound.borrow_mut() = config.global_outbound.clone();
        let outbound = match &config.global_outbound {
            Some(stub) => bridge::to_js(self, ctx, &Value::Stub(stub.clone())),
            None => Ok(JsValue::new_null(ctx.clone())),
        };
        let hand_over = || -> rquickjs::Result<()> {
            self.helper(ctx, "setEnv")?.call::<_, ()>((env.clone(),))?;
            let outbound = outbound?;
            self.web_fn(ctx, "setOutbound")?
                .call::<_, ()>((outbound,))?;
            Ok(())
        };
        hand_over().map_err(|e| LoadError::Env(self.describe_error(ctx, e)))?;
        *self.env.borrow_mut() = Some(Persistent::save(ctx, env));

        let promise = rquickjs::Module::import(ctx, config.main_module.as_str())
            .map_err(|e| self.load_error(ctx, e))?;
        while self.limit_broken().is_none() && ctx.execute_pending_job() {}
        if let Some(reason) = self.limit_broken() {
            return Err(LoadError::ResourceLimit(reason));
        }
        let ns: Object<'js> = match promise.state() {
            rquickjs::promise::PromiseState::Resolved => promise
                .result::<Object<'js>>()
                .and_then(Result::ok)
                .ok_or_else(|| LoadError::Module("main module has no namespace".into()))?,
            rquickjs::promise::PromiseState::Rejected => {
                let err = promise
                    .result::<JsValue<'js>>()
                    .map(|r| r.map_err(|e| self.load_error(ctx, e)));
                return Err(match err {
                    Some(Err(e)) => e,
                    _ => LoadError::Module("main module failed to load".into()),
                });
            }
            rquickjs::promise::PromiseState::Pending => {
                return Err(LoadError::Module(
                    "main module's top-level await never finished".into(),
                ))
            }
        };
        let found = || -> rquickjs::Result<(bool, bool, bool)> {
            let pair: Array<'js> = self.helper(ctx, "surface")?.call((ns.clone(),))?;
            Ok((pair.get(0)?, pair.get(1)?, pair.get(2)?))
        };
        let (rpc, fetch, authenticate) =
            found().map_err(|e| LoadError::Module(self.describe_error(ctx, e)))?;
        *self.namespace.borrow_mut() = Some(Persistent::save(ctx, ns.into_value()));
        Ok(Surface {
            rpc,
            fetch,
            authenticate,
        })
    }

    fn load_error<'js>(&self, ctx: &Ctx<'js>, e: rquickjs::Error) -> LoadError {
        if let Some(reason) = self.limit_broken() {
            return LoadError::ResourceLimit(reason);
        }
        LoadError::Module(self.describe_error(ctx, e))
    }

    /// A readable message for an engine error (catching the pending exception, if any).
    pub(crate) fn describe_error<'js>(&self, ctx: &Ctx<'js>, e: rquickjs::Error) -> String {
        let err = self.rpc_error(ctx, e);
        match err.value() {
            // Module errors already begin with their kind ("SyntaxError in module ...").
            Value::Error(ev) if ev.message.starts_with(ev.name.as_str()) => ev.message.clone(),
            Value::Error(ev) => format!("{}: {}", ev.name, ev.message),
            _ => err.message(),
        }
    }

    /// Turns an engine error into the error a caller sees.
    pub(crate) fn rpc_error<'js>(&self, ctx: &Ctx<'js>, e: rquickjs::Error) -> RpcError {
        if e.is_exception() {
            let thrown = ctx.catch();
            self.error_from_js(ctx, thrown)
        } else {
            RpcError::type_error(e.to_string())
        }
    }

    /// Turns a thrown JavaScript value into the error a caller sees.
    pub(crate) fn error_from_js<'js>(&self, ctx: &Ctx<'js>, thrown: JsValue<'js>) -> RpcError {
        if thrown.is_exception() {
            // Not a JavaScript value: the marker rquickjs throws when a native panicked.
            return self.note_panic();
        }
        if let Some(reason) = self.limit_broken() {
            return resource_limit_error(reason);
        }
        let err = match bridge::to_value(self, ctx, thrown) {
            Ok(Value::Error(ev)) => RpcError::from(*ev),
            Ok(other) => RpcError::from_value(other),
            Err(_) => {
                let _ = ctx.catch();
                RpcError::error("an exception was thrown that cannot be carried over RPC")
            }
        };
        match self.limit_broken() {
            Some(reason) => resource_limit_error(reason),
            None => err,
        }
    }

    pub(crate) fn helper<'js>(
        &self,
        ctx: &Ctx<'js>,
        name: &str,
    ) -> rquickjs::Result<Function<'js>> {
        restore_obj(ctx, &self.helpers)?.get(name)
    }

    pub(crate) fn web_fn<'js>(
        &self,
        ctx: &Ctx<'js>,
        name: &str,
    ) -> rquickjs::Result<Function<'js>> {
        restore_obj(ctx, &self.web)?.get(name)
    }

    /// The isolate's WebAssembly.
    pub(crate) fn wasm(&self) -> &Rc<wasm::Wasm> {
        &self.wasm
    }

    /// The WebAssembly JavaScript API (`{ WebAssembly, newModule }`), built on first use.
    pub(crate) fn wasm_api<'js>(self: &Rc<Self>, ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
        if self.wasm_api.borrow().is_some() {
            return restore_obj(ctx, &self.wasm_api);
        }
        let natives = wasm::natives(ctx, &self.wasm)?;
        crate::wasm_compile::install(ctx, &natives, Rc::downgrade(self))?;
        let api: Object<'js> = crate::bytecode::webassembly(ctx)?.call((natives,))?;
        *self.wasm_api.borrow_mut() = Some(Persistent::save(ctx, api.clone().into_value()));
        Ok(api)
    }

    fn saved<'js>(
        &self,
        ctx: &Ctx<'js>,
        slot: &RefCell<Option<Saved>>,
    ) -> rquickjs::Result<JsValue<'js>> {
        match slot.borrow().as_ref() {
            Some(p) => p.clone().restore(ctx),
            None => Err(rquickjs::Exception::throw_internal(
                ctx,
                "isolate is not started",
            )),
        }
    }

    /// Keeps `obj` alive under a new slot id and returns it.
    pub(crate) fn register<'js>(&self, ctx: &Ctx<'js>, obj: JsValue<'js>) -> u64 {
        let id = self.next_id();
        self.objects
            .borrow_mut()
            .insert(id, Persistent::save(ctx, obj));
        id
    }

    /// Forgets slot `slot`, calling `[Symbol.dispose]` on the object if it has one.
    pub(crate) fn release<'js>(&self, ctx: &Ctx<'js>, slot: u64) {
        self.background.scope_released(slot);
        if let Some(shared) = self.shared() {
            shared.forget_released(slot);
        }
        let Some(saved) = self.objects.borrow_mut().remove(&slot) else {
            return;
        };
        let run = || -> rquickjs::Result<()> {
            let obj = saved.restore(ctx)?;
            self.helper(ctx, "disposeTarget")?.call::<_, ()>((obj,))
        };
        if run().is_err() {
            let _ = ctx.catch();
        }
    }

    /// Resolves what a capability points at: a registered object, or an entrypoint / RPC
    /// target instantiated on first use.
    fn target_object<'js>(
        &self,
        ctx: &Ctx<'js>,
        tref: &TargetRef,
    ) -> rquickjs::Result<JsValue<'js>> {
        let slot = tref.slot();
        if let Some(saved) = self.objects.borrow().get(&slot) {
            return saved.clone().restore(ctx);
        }
        let ns = self.saved(ctx, &self.namespace)?;
        let env = self.saved(ctx, &self.env)?;
        let cx = self.saved(ctx, &self.ctx_obj)?;
        let obj: JsValue<'js> = match tref {
            TargetRef::Object(_) => {
                return Err(rquickjs::Exception::throw_reference(
                    ctx,
                    "RPC target was disposed",
                ))
            }
            TargetRef::Entrypoint { name, .. } => {
                self.helper(ctx, "entrypoint")?
                    .call((ns, name.as_deref(), cx, env))?
            }
            TargetRef::Rpc { request: None, .. } => {
                self.helper(ctx, "rpcTarget")?.call((ns, cx, env))?
            }
            TargetRef::Rpc {
                request: Some(request),
                ..
            } => {
                let req = bridge::to_js(self, ctx, &Value::Request(Box::new((**request).clone())))?;
                let cx: JsValue<'js> = self.helper(ctx, "sessionCtx")?.call((req,))?;
                self.helper(ctx, "rpcTarget")?.call((ns, cx, env))?
            }
        };
        self.objects
            .borrow_mut()
            .insert(slot, Persistent::save(ctx, obj.clone()));
        Ok(obj)
    }

    fn add_reply(&self, reply: Reply) -> u64 {
        let id = self.next_id();
        self.replies.borrow_mut().insert(id, reply);
        id
    }

    /// Calls into a JavaScript object as invocation `id`; `reply` gets the settled result.
    pub(crate) fn invoke<'js>(
        &self,
        ctx: &Ctx<'js>,
        id: u64,
        tref: &TargetRef,
        op: Op,
        reply: Reply,
        trace: Option<capnweb::trace::TraceId>,
    ) {
        self.start_invocation(ctx, id, reply, trace, Some(tref.slot()), || {
            let obj = self.target_object(ctx, tref)?;
            match op {
                Op::Call(method, args) => {
                    let args = bridge::to_js_array(self, ctx, &args)?;
                    self.helper(ctx, "dispatch")?
                        .call::<_, ()>((id, obj, method, args))
                }
                Op::Get(name) => self
                    .helper(ctx, "getProperty")?
                    .call::<_, ()>((id, obj, name)),
            }
        });
    }

    /// Calls the main module's fetch handler with `request`, as invocation `id`.
    pub(crate) fn fetch<'js>(
        &self,
        ctx: &Ctx<'js>,
        id: u64,
        request: Value,
        reply: Reply,
        trace: Option<capnweb::trace::TraceId>,
        allow_socket: bool,
    ) {
        self.start_invocation(ctx, id, reply, trace, None, || {
            let ns = self.saved(ctx, &self.namespace)?;
            let env = self.saved(ctx, &self.env)?;
            let cx = self.saved(ctx, &self.ctx_obj)?;
            let req = bridge::to_js(self, ctx, &request)?;
            // The common case, `export default { fetch() { return new Response(…) } }`, is
            // answered here: a synchronous Response is settled at once, with no async function
            // and no microtask; a promise is awaited in JavaScript. Anything else (a class, no
            // fetch) goes to the prelude's fetchHandler, which throws the right errors.
            let default = ns
                .as_object()
                .map(|o| o.get::<_, JsValue<'js>>("default"))
                .transpose()?;
            let plain = default.filter(|d| d.is_object() && !d.is_function());
            let handler = match &plain {
                Some(d) => d
                    .as_object()
                    .map(|o| o.get::<_, JsValue<'js>>("fetch"))
                    .transpose()?
                    .and_then(|f| f.into_function()),
                None => None,
            };
            let (Some(d), Some(handler)) = (plain, handler) else {
                return self.helper(ctx, "fetchHandler")?.call::<_, ()>((
                    id,
                    ns,
                    req,
                    env,
                    cx,
                    allow_socket,
                ));
            };
            let r: JsValue<'js> = handler.call((rquickjs::function::This(d), req, env, cx))?;
            if is_response(ctx, &r)? && !has_socket(&r)? {
                let result = bridge::to_value(self, ctx, r).map_err(|e| self.rpc_error(ctx, e));
                self.settle(id, result);
                Ok(())
            } else {
                // Settles with what the promise gives (a Response carrying a WebSocket attaches
                // it first, when the caller can take one).
                self.helper(ctx, "answerFetch")?
                    .call::<_, ()>((id, r, allow_socket))
            }
        });
    }

    /// Runs the default export's `authenticate(request, env, ctx)` as invocation `id`: it
    /// settles with the main capability for this caller, or a `Response` to send instead.
    pub(crate) fn authenticate<'js>(
        &self,
        ctx: &Ctx<'js>,
        id: u64,
        request: Value,
        reply: Reply,
        trace: Option<capnweb::trace::TraceId>,
    ) {
        self.start_invocation(ctx, id, reply, trace, None, || {
            let ns = self.saved(ctx, &self.namespace)?;
            let env = self.saved(ctx, &self.env)?;
            let req = bridge::to_js(self, ctx, &request)?;
            let cx: JsValue<'js> = self.helper(ctx, "sessionCtx")?.call((req.clone(),))?;
            self.helper(ctx, "authenticateHandler")?
                .call::<_, ()>((id, ns, req, env, cx))
        });
    }

    /// Answers call `id` (no-op if it was already answered).
    pub(crate) fn settle(&self, id: u64, result: Result<Value, RpcError>) {
        self.background.answered(id);
        let reply = self.replies.borrow_mut().remove(&id);
        if let Some(reply) = reply {
            let result = match self.limit_broken() {
                Some(reason) => Err(resource_limit_error(reason)),
                None => result,
            };
            let _ = reply.send(result);
        }
    }

    /// Keeps the writing end of a stream fed from JavaScript; returns its id.
    pub(crate) fn add_sender(&self, tx: capnweb::StreamSender) -> u64 {
        let id = self.next_id();
        if let Some(shared) = self.shared() {
            let owner = self.current().filter(|o| self.background.is_live(*o));
            if let Some(owner) = owner {
                self.background.add_stream(owner, id);
            }
            self.senders.borrow_mut().insert(id, (tx, shared, owner));
        }
        id
    }

    /// The writing end of stream `id`.
    pub(crate) fn sender(&self, id: u64) -> Option<capnweb::StreamSender> {
        self.senders.borrow().get(&id).map(|(tx, _, _)| tx.clone())
    }

    /// Forgets stream `id` (its reader sees the end once the chunks in flight are read).
    pub(crate) fn take_sender(&self, id: u64) -> Option<capnweb::StreamSender> {
        let (tx, _, owner) = self.senders.borrow_mut().remove(&id)?;
        if let Some(owner) = owner {
            self.background.end_stream(owner, id);
        }
        Some(tx)
    }

    /// Registers a reply channel for a JavaScript promise being tracked (see `bridge`).
    pub(crate) fn track_reply(&self, reply: Reply) -> u64 {
        self.add_reply(reply)
    }

    /// A JavaScript promise settled with the capnweb result `fut` gives, for the running
    /// invocation: a value resolves it, an error rejects it. [`Host::settle_later_with`]
    /// with [`settle_capnweb`], but outside any invocation it throws instead of giving `None`.
    pub(crate) fn settle_later<'js, F>(
        &self,
        ctx: &Ctx<'js>,
        fut: F,
    ) -> rquickjs::Result<Promise<'js>>
    where
        F: std::future::Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        self.settle_later_with(ctx, fut, settle_capnweb)?
            .ok_or_else(|| Exception::throw_message(ctx, GLOBAL_SCOPE_IO))
    }

    /// A JavaScript promise settled with what `fut` gives, for the running invocation: the
    /// wait is its background work, dropped (the promise never settles) when it ends. Once
    /// `fut` gives its output, `finish` turns it into the JavaScript value the promise
    /// resolves to, on this thread, inside the invocation (`Ok(None)`: leave the promise
    /// unsettled, as when `finish` broke the invocation's CPU limit; an exception rejects
    /// it). `None` outside any invocation.
    pub(crate) fn settle_later_with<'js, T, F, G>(
        &self,
        ctx: &Ctx<'js>,
        fut: F,
        finish: G,
    ) -> rquickjs::Result<Option<Promise<'js>>>
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
        G: for<'a> FnOnce(&Ctx<'a>, &Host, u64, T) -> rquickjs::Result<Option<JsValue<'a>>>
            + Send
            + 'static,
    {
        let Some(owner) = self.current().filter(|o| self.background.is_live(*o)) else {
            return Ok(None);
        };
        let shared = self
            .shared()
            .ok_or_else(|| Exception::throw_internal(ctx, "the isolate is shutting down"))?;
        let (promise, resolve, reject) = ctx.promise()?;
        let id = self.next_id();
        self.background.add_pull(
            id,
            owner,
            Persistent::save(ctx, resolve.into_value()),
            Persistent::save(ctx, reject.into_value()),
        );
        let task = capnweb::rt::handle().spawn(async move {
            let result = fut.await;
            shared.post(move |ctx, host| {
                host.finish_pull(ctx, id, move |ctx, host, owner| {
                    finish(ctx, host, owner, result)
                })
            });
        });
        self.background.set_pull_task(id, task.abort_handle());
        Ok(Some(promise))
    }

    /// Settles the JavaScript promise `id` with what `make` gives (see `settle_later_with`).
    fn finish_pull<'js>(
        &self,
        ctx: &Ctx<'js>,
        id: u64,
        make: impl FnOnce(&Ctx<'js>, &Host, u64) -> rquickjs::Result<Option<JsValue<'js>>>,
    ) {
        let Some(pull) = self.background.take_pull(id) else {
            return;
        };
        if !self.may_run(ctx, pull.owner) {
            return;
        }
        let (resolve, reject) = (pull.resolve, pull.reject);
        self.enter(Some(pull.owner));
        let run = || -> rquickjs::Result<()> {
            let Some(v) = make(ctx, self, pull.owner)? else {
                return Ok(());
            };
            match resolve.restore(ctx)?.into_function() {
                Some(f) => f.call::<_, ()>((v,)),
                None => Ok(()),
            }
        };
        if let Err(e) = run() {
            let thrown = if e.is_exception() {
                ctx.catch()
            } else {
                JsValue::new_undefined(ctx.clone())
            };
            if let Ok(Some(f)) = reject.restore(ctx).map(|v| v.into_function()) {
                let _ = f.call::<_, ()>((thrown,));
            }
        }
    }

    /// Arms timer `timer` (a JavaScript timer id) for the running invocation.
    pub(crate) fn add_timer(&self, timer: u64, delay: Duration) -> Result<(), TimerError> {
        let Some(shared) = self.shared() else {
            return Err(TimerError::GlobalScope);
        };
        self.background.add_timer(
            &shared,
            self.current(),
            timer,
            delay,
            self.limits().max_timers,
        )
    }

    /// Clears timer `timer`: its host task stops at once.
    pub(crate) fn clear_timer(&self, timer: u64) {
        self.background.clear_timer(timer);
    }

    /// Fires timer `timer` (arming `seq`), for the invocation that armed it.
    pub(crate) fn fire_timer<'js>(&self, ctx: &Ctx<'js>, timer: u64, seq: u64) {
        let Some(owner) = self.background.take_fired(timer, seq) else {
            return;
        };
        if !self.may_run(ctx, owner) {
            self.undo(ctx, Ended::timer(timer));
            return;
        }
        self.enter(Some(owner));
        if let Ok(f) = self.web_fn(ctx, "fireTimer") {
            if f.call::<_, ()>((timer,)).is_err() {
                let _ = ctx.catch();
            }
        }
    }

    /// `ctx.waitUntil`: keeps the running invocation going (within `Limits::wait_until` of
    /// its answer) until the promise settles. Returns the token to hand back once it has.
    pub(crate) fn keep_alive(&self) -> Option<u64> {
        self.current().filter(|id| self.background.wait(*id))
    }

    /// A `ctx.waitUntil` promise of invocation `token` settled.
    pub(crate) fn let_go(&self, token: u64) {
        self.background.waited(token);
    }

    /// `ctx.waitUntil`'s time after invocation `id` answered is over.
    pub(crate) fn wait_over(&self, id: u64) {
        self.background.wait_over(id);
    }

    /// The caller of invocation `id` went away: no answer is sent, and its work goes on only
    /// as long as something other than the answer keeps it.
    pub(crate) fn abandon(&self, id: u64) {
        if self.replies.borrow_mut().remove(&id).is_some() {
            self.background.answered(id);
        }
    }

    /// Invocation `id` did not answer within the wall-clock limit: its caller has the error,
    /// and everything it left running ends now.
    pub(crate) fn expire<'js>(&self, ctx: &Ctx<'js>, id: u64) {
        let Some(reply) = self.replies.borrow_mut().remove(&id) else {
            return;
        };
        let _ = reply.send(Err(crate::wall::wall_clock_error(self.limits().wall_time)));
        let ended = self.background.end_now(id);
        self.undo(ctx, ended);
    }

    /// Whether a timer or an awaited result of invocation `id` may run now; if not, the
    /// invocation ends here (failed first if it never answered).
    fn may_run<'js>(&self, ctx: &Ctx<'js>, id: u64) -> bool {
        let limits = self.limits();
        let verdict = self
            .background
            .verdict(id, limits.wait_until, limits.wall_time, |slot| {
                self.scope_held(slot)
            });
        match verdict {
            Verdict::Run => true,
            Verdict::WallClock => {
                self.expire(ctx, id);
                false
            }
            Verdict::Over => {
                let ended = self.background.end_now(id);
                self.undo(ctx, ended);
                false
            }
        }
    }

    /// Whether the capability in slot `slot` is still held (released capabilities are noted
    /// at once by the thread that released them, before the release job runs here).
    fn scope_held(&self, slot: u64) -> bool {
        self.objects.borrow().contains_key(&slot)
            && self.shared().is_some_and(|s| !s.is_released(slot))
    }

    /// Ends the invocations that no longer have a reason to go on (after each job, see
    /// `Unit::run`), and starts `ctx.waitUntil`'s time for those that answered with
    /// waitUntil work pending.
    pub(crate) fn reap<'js>(&self, ctx: &Ctx<'js>) {
        let ended = self
            .background
            .reap(|slot| self.scope_held(slot), |id| self.start_wait_bound(id));
        self.undo(ctx, ended);
    }

    /// A task that ends invocation `id`'s `ctx.waitUntil` time after `Limits::wait_until`.
    fn start_wait_bound(&self, id: u64) -> Option<tokio::task::AbortHandle> {
        let weak = Arc::downgrade(&self.shared()?);
        let bound = self.limits().wait_until;
        let task = capnweb::rt::handle().spawn(async move {
            tokio::time::sleep(bound).await;
            if let Some(shared) = weak.upgrade() {
                shared.post(move |_, host| host.wait_over(id));
            }
        });
        Some(task.abort_handle())
    }

    /// Undoes in JavaScript what ended invocations left: their timers' entries, and the
    /// streams they fed (cut off with an error).
    fn undo<'js>(&self, ctx: &Ctx<'js>, ended: Ended) {
        if !ended.timers.is_empty() {
            let drop_timers = || -> rquickjs::Result<()> {
                let ids = js_array(
                    ctx,
                    ended
                        .timers
                        .iter()
                        .map(|t| JsValue::new_float(ctx.clone(), *t as f64))
                        .collect(),
                )?;
                self.web_fn(ctx, "dropTimers")?.call::<_, ()>((ids,))
            };
            if drop_timers().is_err() {
                let _ = ctx.catch();
            }
        }
        for sid in ended.streams {
            if let Some((tx, _, _)) = self.senders.borrow_mut().remove(&sid) {
                let err = RpcError::error("the invocation that fed this stream ended");
                drop(capnweb::rt::handle().spawn(async move { tx.abort(err).await }));
            }
        }
    }

    /// Attaches the JavaScript end `end` of a WebSocketPair to a real connection, for fetch
    /// invocation `invocation`: the server takes it with `Isolate::fetch_socket`. Returns the
    /// socket's slot.
    pub(crate) fn attach_socket<'js>(
        &self,
        ctx: &Ctx<'js>,
        invocation: u64,
        end: JsValue<'js>,
    ) -> Option<u64> {
        let shared = self.shared()?;
        let sid = self.register(ctx, end);
        let (entry, parts) = crate::socket::attach(&shared, sid);
        self.sockets.borrow_mut().insert(sid, entry);
        shared.add_upgrade(invocation, parts);
        Some(sid)
    }

    /// Queues a message for socket `sid`'s peer.
    pub(crate) fn socket_send(
        &self,
        sid: u64,
        msg: crate::socket::SocketMessage,
    ) -> Result<(), crate::socket::SendRefused> {
        match self.sockets.borrow_mut().get_mut(&sid) {
            Some(entry) => entry.send(msg),
            None => Err(crate::socket::SendRefused::Closing),
        }
    }

    /// Closes socket `sid` with `code` and `reason` (its close listeners run when the peer
    /// answers, or the connection ends).
    pub(crate) fn socket_close(&self, sid: u64, code: u16, reason: String) {
        if let Some(entry) = self.sockets.borrow_mut().get_mut(&sid) {
            entry.close(code, reason);
        }
    }

    /// Something happened to socket `sid`: its listeners run as a new invocation made on the
    /// socket (so what they leave running lives while it is open). A close forgets it.
    pub(crate) fn socket_event<'js>(
        &self,
        ctx: &Ctx<'js>,
        sid: u64,
        event: crate::socket::SocketEvent,
    ) {
        use crate::socket::{SocketEvent, SocketMessage};
        if !self.sockets.borrow().contains_key(&sid) {
            return;
        }
        let id = self.next_id();
        self.background.begin(id, None, Some(sid));
        if let Some((start, _)) = self.slice.get() {
            self.slice.set(Some((start, Some(id))));
        }
        let closing = matches!(event, SocketEvent::Close { .. });
        let run = || -> rquickjs::Result<()> {
            let f = self.web_fn(ctx, "socketEvent")?;
            match event {
                SocketEvent::Message(SocketMessage::Text(t)) => {
                    f.call::<_, ()>((sid, "message", t, 0, ""))
                }
                SocketEvent::Message(SocketMessage::Binary(b)) => {
                    let data = bridge::to_js(
                        self,
                        ctx,
                        &Value::Bytes(capnweb::Bytes {
                            data: b,
                            kind: Some(capnweb::ByteKind::ArrayBuffer),
                        }),
                    )?;
                    f.call::<_, ()>((sid, "message", data, 0, ""))
                }
                SocketEvent::Close { code, reason } => {
                    f.call::<_, ()>((sid, "close", JsValue::new_null(ctx.clone()), code, reason))
                }
            }
        };
        if run().is_err() {
            let _ = ctx.catch();
        }
        self.background.answered(id);
        if closing {
            self.sockets.borrow_mut().remove(&sid);
            if let Some(shared) = self.shared() {
                shared.socket_closed();
            }
            self.release(ctx, sid);
        }
    }

    /// Starts a capnweb session over a WebSocket of the function, offering `main` (if not
    /// null); returns its id and the peer's main object.
    pub(crate) fn rpc_start<'js>(
        &self,
        ctx: &Ctx<'js>,
        main: JsValue<'js>,
    ) -> rquickjs::Result<(u64, JsValue<'js>)> {
        let shared = self
            .shared()
            .ok_or_else(|| Exception::throw_internal(ctx, "the isolate is shutting down"))?;
        let main = if main.is_null() || main.is_undefined() {
            None
        } else {
            match bridge::to_value(self, ctx, main)? {
                Value::Stub(s) => Some(s),
                Value::Promise(p) => Some(p.to_stub()),
                _ => {
                    return Err(Exception::throw_type(
                        ctx,
                        "the main object of a capnweb session must be an RpcTarget, a function or a stub",
                    ))
                }
            }
        };
        let id = self.next_id();
        let remote = self.rpc_sessions.borrow_mut().start(&shared, id, main);
        Ok((id, bridge::to_js(self, ctx, &Value::Stub(remote))?))
    }

    /// A capnweb HTTP batch client to `url` through the function's `globalOutbound`; `None`
    /// when it has none.
    pub(crate) fn rpc_batch_client<'js>(
        &self,
        ctx: &Ctx<'js>,
        url: String,
        headers: Vec<(String, String)>,
    ) -> rquickjs::Result<Option<JsValue<'js>>> {
        let Some(outbound) = self.outbound.borrow().clone() else {
            return Ok(None);
        };
        let shared = self
            .shared()
            .ok_or_else(|| Exception::throw_internal(ctx, "the isolate is shutting down"))?;
        let remote = crate::capnweb_js::batch_client(&shared, outbound, url, headers);
        Ok(Some(bridge::to_js(self, ctx, &Value::Stub(remote))?))
    }

    /// A message for capnweb session `id`.
    pub(crate) fn rpc_feed(&self, id: u64, text: String) {
        self.rpc_sessions.borrow().feed(id, text);
    }

    /// Ends capnweb session `id`.
    pub(crate) fn rpc_end(&self, id: u64) {
        self.rpc_sessions.borrow_mut().end(id);
    }

    /// Sends a frame of capnweb session `id` on its WebSocket.
    pub(crate) fn rpc_out<'js>(&self, ctx: &Ctx<'js>, id: u64, frame: capnweb::Frame) {
        let run = || -> rquickjs::Result<()> {
            let f = self.helper(ctx, "capnwebOut")?;
            match frame {
                capnweb::Frame::Text(t) => f.call::<_, ()>((id, t, 0, "")),
                capnweb::Frame::Close { code, reason } => {
                    f.call::<_, ()>((id, JsValue::new_null(ctx.clone()), code, reason))
                }
                _ => Ok(()),
            }
        };
        if run().is_err() {
            let _ = ctx.catch();
        }
    }

    /// Closes every open socket at once with `code` and `reason` (the isolate is going away).
    pub(crate) fn close_sockets(&self, code: u16, reason: &str) {
        for entry in self.sockets.borrow_mut().values_mut() {
            entry.abort(code, reason);
        }
    }

    /// Rejects every waiting call with `err`.
    pub(crate) fn fail_pending_with(&self, err: &RpcError) {
        let replies: Vec<Reply> = self.replies.borrow_mut().drain().map(|(_, r)| r).collect();
        for reply in replies {
            let _ = reply.send(Err(err.clone()));
        }
    }

    /// Rejects every waiting call (on discard).
    pub(crate) fn fail_pending(&self, reason: Option<&str>) {
        let replies: Vec<Reply> = self.replies.borrow_mut().drain().map(|(_, r)| r).collect();
        for reply in replies {
            let err = match reason {
                Some(r) => resource_limit_error(r),
                None => RpcError::error(format!("isolate '{}' was shut down", self.id())),
            };
            let _ = reply.send(Err(err));
        }
    }

    /// Drops every JavaScript value this host keeps alive (its WebAssembly's too). Must run
    /// before the context and runtime are freed.
    pub(crate) fn clear(&self, ctx: &Ctx<'_>) {
        self.wasm.clear(ctx);
        self.objects.borrow_mut().clear();
        let sockets: Vec<_> = self.sockets.borrow_mut().drain().collect();
        if let Some(shared) = self.shared() {
            for _ in &sockets {
                shared.socket_closed();
            }
        }
        drop(sockets);
        self.rpc_sessions.borrow_mut().clear();
        self.outbound.borrow_mut().take();
        self.background.clear();
        // A stream cut off by a discarded isolate ends with an error, not as if complete.
        let senders: Vec<_> = self.senders.borrow_mut().drain().map(|(_, s)| s).collect();
        for (tx, _shared, _) in senders {
            let err = RpcError::error(format!("isolate '{}' was shut down", self.id()));
            drop(capnweb::rt::handle().spawn(async move { tx.abort(err).await }));
        }
        for slot in [
            &self.helpers,
            &self.web,
            &self.namespace,
            &self.env,
            &self.ctx_obj,
            &self.wasm_api,
        ] {
            slot.borrow_mut().take();
        }
    }
}

/// How [`Host::settle_later`] settles its promise with a capnweb result: a value is what it
/// resolves to; an error is thrown in its JavaScript form, so `finish_pull` rejects the
/// promise with it.
fn settle_capnweb<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    _owner: u64,
    result: Result<Value, RpcError>,
) -> rquickjs::Result<Option<JsValue<'js>>> {
    match result {
        Ok(v) => bridge::to_js(host, ctx, &v).map(Some),
        Err(e) => {
            let error = bridge::to_js(host, ctx, e.value())?;
            Err(ctx.throw(error))
        }
    }
}

fn restore_obj<'js>(
    ctx: &Ctx<'js>,
    slot: &RefCell<Option<Saved>>,
) -> rquickjs::Result<Object<'js>> {
    let v = match slot.borrow().as_ref() {
        Some(p) => p.clone().restore(ctx)?,
        None => {
            return Err(rquickjs::Exception::throw_internal(
                ctx,
                "isolate is not started",
            ))
        }
    };
    v.into_object()
        .ok_or_else(|| rquickjs::Exception::throw_internal(ctx, "isolate helpers are missing"))
}

/// Builds a JavaScript array from values already converted.
pub(crate) fn js_array<'js>(
    ctx: &Ctx<'js>,
    items: Vec<JsValue<'js>>,
) -> rquickjs::Result<Array<'js>> {
    let a = Array::new(ctx.clone())?;
    for (i, v) in items.into_iter().enumerate() {
        a.set(i, v)?;
    }
    Ok(a)
}

/// Whether a Response carries a WebSocket (`response.webSocket`).
fn has_socket<'js>(r: &JsValue<'js>) -> rquickjs::Result<bool> {
    match r.as_object() {
        Some(o) => {
            let ws = o.get::<_, JsValue<'js>>("webSocket")?;
            Ok(!(ws.is_null() || ws.is_undefined()))
        }
        None => Ok(false),
    }
}

/// `v instanceof globalThis.Response`, as the prelude's fetchHandler checks it (a throwing
/// check is an exception, not a yes).
fn is_response<'js>(ctx: &Ctx<'js>, v: &JsValue<'js>) -> rquickjs::Result<bool> {
    if !v.is_object() {
        return Ok(false);
    }
    let class: JsValue<'js> = ctx.globals().get("Response")?;
    // SAFETY: both values are alive for the call (borrowed from live handles in `ctx`).
    let rc = unsafe {
        rquickjs::qjs::JS_IsInstanceOf(ctx.as_raw().as_ptr(), v.as_raw(), class.as_raw())
    };
    if rc < 0 {
        Err(rquickjs::Error::Exception)
    } else {
        Ok(rc != 0)
    }
}
