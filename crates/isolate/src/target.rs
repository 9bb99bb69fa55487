//! [`JsTarget`]: a JavaScript object seen from capnweb. Calls pass the isolate's gate
//! (`gate.rs`: refused once it is evicted or its group is over its call budget), post a job to
//! the isolate's thread (in call order, which keeps e-order), run the method there, and answer
//! over a oneshot once the JavaScript promise settles.

use std::sync::Arc;
use std::time::Instant;

use capnweb::{CallResult, RpcTarget, Value};

use crate::host::Op;
use crate::state::Shared;

/// Which JavaScript object a capability points at.
#[derive(Debug, Clone)]
pub(crate) enum TargetRef {
    /// An object registered by the bridge (an `RpcTarget` or function passed out).
    Object(u64),
    /// An entrypoint (`None`: the default export), instantiated on first use.
    Entrypoint { name: Option<String>, slot: u64 },
    /// The seed's RPC target, `new default.rpc(ctx, env)`, instantiated on first use; with
    /// `request`, its `ctx.request` is that request (read-only, bodyless).
    Rpc {
        slot: u64,
        request: Option<std::sync::Arc<capnweb::RequestValue>>,
    },
}

impl TargetRef {
    pub(crate) fn slot(&self) -> u64 {
        match self {
            TargetRef::Object(s)
            | TargetRef::Entrypoint { slot: s, .. }
            | TargetRef::Rpc { slot: s, .. } => *s,
        }
    }
}

/// A capability on a JavaScript object in an isolate.
pub(crate) struct JsTarget {
    shared: Arc<Shared>,
    tref: TargetRef,
}

impl JsTarget {
    pub(crate) fn new(shared: Arc<Shared>, tref: TargetRef) -> Self {
        JsTarget { shared, tref }
    }

    fn run(&self, method: &str, op: Op) -> CallResult {
        let entered = match crate::gate::enter(&self.shared) {
            Ok(e) => e,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tref = self.tref.clone();
        let trace = capnweb::trace::current();
        let id = self.shared.next_id();
        self.shared
            .post(move |ctx, host| host.invoke(ctx, id, &tref, op, tx, trace));
        let shared = self.shared.clone();
        let method = method.to_owned();
        let start = Instant::now();
        let answer = crate::wall::answer(shared.clone(), id, rx);
        Box::pin(async move {
            let result = answer.await;
            drop(entered);
            tracing::trace!(
                target: "isolate::rpc",
                function = shared.id.as_str(),
                event = "settled",
                method = method.as_str(),
                "call settled"
            );
            telemetry::record_call(&shared.id, &method, start.elapsed(), result.is_err());
            result
        })
    }
}

impl RpcTarget for JsTarget {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallResult {
        self.run(method, Op::Call(method.to_owned(), args))
    }

    fn get(self: Arc<Self>, name: &str) -> CallResult {
        self.run(name, Op::Get(name.to_owned()))
    }

    fn on_dispose(&self) {
        let slot = self.tref.slot();
        self.shared.note_released(slot);
        self.shared.post(move |ctx, host| host.release(ctx, slot));
    }
}
