//! `map()`: a function recorded once as instructions, sent with the call it applies to, and
//! replayed where the value lives, so transforming a remote array costs no extra round trip.
//!
//! Recording ([`MapRecorder`]) and replaying ([`apply_map`]) use the same instruction format as
//! the JavaScript implementation (`["remap", id, path, captures, instructions]`).

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::codec::{devaluate, evaluate, Exporter, Importer};
use crate::hook::{error_hook, value_hook, Hook, HookRef, PayloadHook};
use crate::limits::Limits;
use crate::stream::ReadableStream;
use crate::value::{PathKey, Value};
use crate::{RpcError, Stub};

/// Applies recorded `instructions` to `input` (to each element when it is an array).
pub(crate) fn apply_map(
    input: Value,
    captures: Vec<HookRef>,
    instructions: &[serde_json::Value],
) -> HookRef {
    let result = match input {
        Value::Array(items) => items
            .into_iter()
            .map(|item| apply_to_element(item, &captures, instructions))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        v @ (Value::Null | Value::Undefined) => Ok(v),
        other => apply_to_element(other, &captures, instructions),
    };
    match result {
        Ok(v) => Arc::new(PayloadHook(v)),
        Err(e) => error_hook(e),
    }
}

struct Applicator<'a> {
    captures: &'a [HookRef],
    variables: Mutex<Vec<HookRef>>,
    limits: Limits,
}

impl Importer for Applicator<'_> {
    fn get_export(&self, id: i64) -> Option<HookRef> {
        if id < 0 {
            let idx = usize::try_from(-id - 1).ok()?;
            self.captures.get(idx).cloned()
        } else {
            let idx = usize::try_from(id).ok()?;
            self.variables.lock().ok()?.get(idx).cloned()
        }
    }
    fn import_stub(&self, _: i64) -> Result<HookRef, RpcError> {
        Err(RpcError::error(
            "A mapper function cannot refer to exports.",
        ))
    }
    fn import_promise(&self, id: i64) -> Result<HookRef, RpcError> {
        self.import_stub(id)
    }
    fn take_pipe_readable(&self, _: i64) -> Result<ReadableStream, RpcError> {
        Err(RpcError::error(
            "A mapper function cannot use pipe readables.",
        ))
    }
    fn limits(&self) -> &Limits {
        &self.limits
    }
}

fn apply_to_element(
    input: Value,
    captures: &[HookRef],
    instructions: &[serde_json::Value],
) -> Result<Value, RpcError> {
    let Some((last, body)) = instructions.split_last() else {
        return Err(RpcError::error("Invalid empty mapper function."));
    };
    let app = Applicator {
        captures,
        variables: Mutex::new(vec![Arc::new(PayloadHook(input)) as HookRef]),
        limits: Limits::default(),
    };
    for instruction in body {
        let v = evaluate(instruction, &app)?;
        let hook = match v {
            Value::Stub(s) => s.hook,
            other => value_hook(other),
        };
        app.variables
            .lock()
            .map_err(|_| RpcError::error("map state poisoned"))?
            .push(hook);
    }
    evaluate(last, &app)
}

/// A placeholder for a value inside a `map()` function: the input, or the result of a call or
/// property read recorded earlier.
#[derive(Clone)]
pub struct MapInput {
    recorder: Arc<Mutex<Recording>>,
    idx: i64,
}

impl std::fmt::Debug for MapInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MapInput({})", self.idx)
    }
}

#[derive(Default)]
struct Recording {
    captures: Vec<HookRef>,
    instructions: Vec<serde_json::Value>,
    error: Option<RpcError>,
}

/// The hook a placeholder stands for while the mapper's result is serialized.
struct MapVarHook {
    recorder: Arc<Mutex<Recording>>,
    idx: i64,
}

impl Hook for MapVarHook {
    fn call(self: Arc<Self>, _: &[PathKey], _: Vec<Value>) -> HookRef {
        error_hook(misuse())
    }
    fn get(self: Arc<Self>, _: &[PathKey]) -> HookRef {
        error_hook(misuse())
    }
    fn map(
        self: Arc<Self>,
        _: &[PathKey],
        _: Vec<HookRef>,
        _: Arc<Vec<serde_json::Value>>,
    ) -> HookRef {
        error_hook(misuse())
    }
    fn pull(self: Arc<Self>) -> BoxFuture<'static, Result<Value, RpcError>> {
        Box::pin(async { Err(misuse()) })
    }
    fn map_var(&self) -> Option<(usize, i64)> {
        Some((Arc::as_ptr(&self.recorder) as usize, self.idx))
    }
}

fn misuse() -> RpcError {
    RpcError::error(
        "Attempted to use an abstract placeholder from a mapper function. Please make sure your map function has no side effects.",
    )
}

struct RecordingExporter<'a>(&'a Arc<Mutex<Recording>>);

impl RecordingExporter<'_> {
    fn capture(&self, rec: &mut Recording, hook: &HookRef) -> i64 {
        if let Some((recorder, idx)) = hook.map_var() {
            if recorder == Arc::as_ptr(self.0) as usize {
                return idx;
            }
        }
        if let Some(pos) = rec.captures.iter().position(|h| Arc::ptr_eq(h, hook)) {
            return -(pos as i64) - 1;
        }
        rec.captures.push(hook.clone());
        -(rec.captures.len() as i64)
    }
}

impl Exporter for RecordingExporter<'_> {
    fn export_stub(&self, _: HookRef) -> Result<i64, RpcError> {
        Err(RpcError::error(
            "Can't construct an RpcTarget or RPC callback inside a mapper function. Try creating a new RpcStub outside the callback first, then using it inside the callback.",
        ))
    }
    fn export_promise(&self, hook: HookRef) -> Result<i64, RpcError> {
        self.export_stub(hook)
    }
    fn import_id_of(&self, hook: &HookRef) -> Option<i64> {
        let mut rec = self.0.lock().ok()?;
        Some(self.capture(&mut rec, hook))
    }
    fn create_pipe(&self, _: ReadableStream) -> Result<i64, RpcError> {
        Err(RpcError::error(
            "Cannot send ReadableStream inside a mapper function.",
        ))
    }
}

impl MapInput {
    fn push(&self, instruction: serde_json::Value) -> MapInput {
        let mut rec = match self.recorder.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        rec.instructions.push(instruction);
        MapInput {
            recorder: self.recorder.clone(),
            idx: rec.instructions.len() as i64,
        }
    }

    fn record_error(&self, e: RpcError) {
        if let Ok(mut rec) = self.recorder.lock() {
            rec.error.get_or_insert(e);
        }
    }

    /// Records reading property `name` of this placeholder.
    pub fn get(&self, name: &str) -> MapInput {
        self.push(serde_json::json!(["pipeline", self.idx, [name]]))
    }

    /// Records calling `method` on this placeholder.
    pub fn call(&self, method: &str, args: Vec<Value>) -> MapInput {
        let args = self.devaluate_args(args);
        self.push(serde_json::json!(["pipeline", self.idx, [method], args]))
    }

    /// Records calling `method` on a stub captured from outside the mapper.
    pub fn call_captured(&self, stub: &Stub, method: &str, args: Vec<Value>) -> MapInput {
        let subject = {
            let mut rec = match self.recorder.lock() {
                Ok(r) => r,
                Err(p) => p.into_inner(),
            };
            RecordingExporter(&self.recorder).capture(&mut rec, &stub.hook)
        };
        let args = self.devaluate_args(args);
        self.push(serde_json::json!(["pipeline", subject, [method], args]))
    }

    fn devaluate_args(&self, args: Vec<Value>) -> serde_json::Value {
        match devaluate(&Value::Array(args), &RecordingExporter(&self.recorder)) {
            Ok(serde_json::Value::Array(mut outer)) if outer.len() == 1 => outer.remove(0),
            Ok(_) => serde_json::Value::Array(Vec::new()),
            Err(e) => {
                self.record_error(e);
                serde_json::Value::Array(Vec::new())
            }
        }
    }

    /// This placeholder as a value, to put in the mapper's result or in call arguments.
    pub fn value(&self) -> Value {
        let hook: HookRef = Arc::new(MapVarHook {
            recorder: self.recorder.clone(),
            idx: self.idx,
        });
        Value::Promise(crate::RpcPromise::from_hook(hook))
    }
}

impl From<MapInput> for Value {
    fn from(m: MapInput) -> Value {
        m.value()
    }
}

impl From<&MapInput> for Value {
    fn from(m: &MapInput) -> Value {
        m.value()
    }
}

/// Records a mapper function into captures and instructions.
pub(crate) struct MapRecorder;

impl MapRecorder {
    pub(crate) fn record(
        f: impl FnOnce(&MapInput) -> Value,
    ) -> (Vec<HookRef>, Vec<serde_json::Value>) {
        let recorder = Arc::new(Mutex::new(Recording::default()));
        let input = MapInput {
            recorder: recorder.clone(),
            idx: 0,
        };
        let result = f(&input);
        let out = devaluate(&result, &RecordingExporter(&recorder));
        drop(result);
        let mut rec = match recorder.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        match (rec.error.take(), out) {
            (None, Ok(json)) => {
                rec.instructions.push(json);
                (
                    std::mem::take(&mut rec.captures),
                    std::mem::take(&mut rec.instructions),
                )
            }
            (Some(e), _) | (None, Err(e)) => {
                // An invalid mapper: a map whose only instruction throws the error remotely
                // is not expressible, so fail with an empty recording the peer rejects.
                tracing::debug!("map() recording failed: {e}");
                (Vec::new(), Vec::new())
            }
        }
    }
}
