//! Module loading from the module map: name resolution (relative specifiers against the
//! importing module), the module types (ES, CommonJS, text, data, JSON, WebAssembly), the
//! built-in `cloudflare:workers` and `capnweb` modules, the Node built-ins (`node.rs`), and
//! load errors that name the module and line.

use std::collections::HashMap;
use std::sync::Arc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Exception, Function, Module, Runtime};

use crate::config::ModuleSource;

/// The name of the built-in module (also importable as `capnweb`).
pub(crate) const BUILTIN: &str = "cloudflare:workers";

const BUILTIN_SOURCE: &str = r#"
const m = globalThis.__cloudflare_workers;
export const RpcTarget = m.RpcTarget;
export const RpcStub = m.RpcStub;
export const RpcPromise = m.RpcPromise;
export const WorkerEntrypoint = m.WorkerEntrypoint;
export const DurableObject = m.DurableObject;
export const env = m.env;
export const waitUntil = m.waitUntil;
export default m;
"#;

/// The name of the built-in `capnweb` module (the npm package's names, on the Rust core).
pub(crate) const CAPNWEB: &str = "capnweb";

const CAPNWEB_SOURCE: &str = r#"
const m = globalThis.__capnweb;
export const DEFAULT_LIMITS = m.DEFAULT_LIMITS;
export const DEFAULT_MAX_DEPTH = m.DEFAULT_MAX_DEPTH;
export const RpcPromise = m.RpcPromise;
export const RpcSession = m.RpcSession;
export const RpcStub = m.RpcStub;
export const RpcTarget = m.RpcTarget;
export const WebSocketTransport = m.WebSocketTransport;
export const deserialize = m.deserialize;
export const newHttpBatchRpcResponse = m.newHttpBatchRpcResponse;
export const newHttpBatchRpcSession = m.newHttpBatchRpcSession;
export const newMessagePortRpcSession = m.newMessagePortRpcSession;
export const newWebSocketRpcSession = m.newWebSocketRpcSession;
export const newWorkersRpcResponse = m.newWorkersRpcResponse;
export const newWorkersWebSocketRpcResponse = m.newWorkersWebSocketRpcResponse;
export const nodeHttpBatchRpcResponse = m.nodeHttpBatchRpcResponse;
export const serialize = m.serialize;
const w = globalThis.__cloudflare_workers;
export const WorkerEntrypoint = w.WorkerEntrypoint;
export const DurableObject = w.DurableObject;
"#;

type Map = Arc<HashMap<String, ModuleSource>>;

/// Normalizes a module name: no leading `./` or `/`, `.` and `..` segments applied.
pub(crate) fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// Resolves `specifier` as imported from module `base` (both module-map names).
pub(crate) fn resolve(base: &str, specifier: &str) -> String {
    if specifier.starts_with("./") || specifier.starts_with("../") {
        let dir = match base.rfind('/') {
            Some(i) => &base[..i],
            None => "",
        };
        normalize(&format!("{dir}/{specifier}"))
    } else {
        normalize(specifier)
    }
}

/// Installs the module-map resolver and loader on `rt`.
pub(crate) fn install_loader(rt: &Runtime, modules: &[(String, ModuleSource)]) {
    let map: Map = Arc::new(
        modules
            .iter()
            .map(|(name, src)| (normalize(name), src.clone()))
            .collect(),
    );
    rt.set_loader(MapResolver(map.clone()), MapLoader(map));
}

struct MapResolver(Map);

impl Resolver for MapResolver {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        if name == BUILTIN {
            return Ok(BUILTIN.to_owned());
        }
        if name == CAPNWEB {
            return Ok(CAPNWEB.to_owned());
        }
        // A Node built-in's name wins over a module of that name, as in Node.
        if let Some(module) = crate::node::builtin(name) {
            return Ok(module.to_owned());
        }
        let resolved = resolve(base, name);
        if self.0.contains_key(&resolved) {
            return Ok(resolved);
        }
        let from = if base.is_empty() {
            String::new()
        } else {
            format!(" imported from '{base}'")
        };
        Err(Exception::throw_reference(
            ctx,
            &format!("Cannot find module '{name}'{from}: no module '{resolved}' in the module map"),
        ))
    }
}

struct MapLoader(Map);

impl Loader for MapLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        if name == BUILTIN {
            return declare(ctx, name, BUILTIN_SOURCE.to_owned());
        }
        if name == CAPNWEB {
            return declare(ctx, name, CAPNWEB_SOURCE.to_owned());
        }
        if crate::node::builtin(name) == Some(name) {
            let source = crate::node::module_source(ctx, name)?;
            return declare(ctx, name, source);
        }
        let Some(src) = self.0.get(name) else {
            return Err(Exception::throw_reference(
                ctx,
                &format!("Cannot find module '{name}'"),
            ));
        };
        let source = match src {
            ModuleSource::EsModule(s) => s.clone(),
            ModuleSource::CommonJs(s) => crate::cjs::wrapper(name, s, |n| self.0.get(n)),
            ModuleSource::Text(s) => format!("export default {};", js_string(s)),
            ModuleSource::Json(s) => {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(s) {
                    return Err(Exception::throw_syntax(
                        ctx,
                        &format!("JSON module '{name}' is not valid JSON: {e}"),
                    ));
                }
                format!("export default JSON.parse({});", js_string(s))
            }
            ModuleSource::Data(b) => {
                let bytes: Vec<String> = b.iter().map(u8::to_string).collect();
                format!(
                    "export default new Uint8Array([{}]).buffer;",
                    bytes.join(",")
                )
            }
            // workerd's semantics: the default export is a `WebAssembly.Module`. It is compiled
            // now, so a bad module is a load error that names it.
            ModuleSource::Wasm(b) => {
                let register = || -> rquickjs::Result<()> {
                    let f: Function<'js> = ctx.globals().get("__functions_wasm_module")?;
                    f.call::<_, ()>((name, crate::bridge::js_bytes(ctx, b)?))
                };
                register().map_err(|e| name_error(ctx, name, e, "CompileError"))?;
                format!(
                    "export default __functions_wasm_module({});",
                    js_string(name)
                )
            }
        };
        declare(ctx, name, source)
    }
}

/// Declares (parses) a module, turning a syntax error into one that names the module and line.
fn declare<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    source: String,
) -> rquickjs::Result<Module<'js, Declared>> {
    Module::declare(ctx.clone(), name, source).map_err(|e| name_error(ctx, name, e, "SyntaxError"))
}

/// Rethrows the pending exception of `e` as one whose message names the module (and the line,
/// when known): "ReferenceError in module 'x.js' at line 2: ...". `kind` names an error that is
/// not an `Error` object.
fn name_error<'js>(ctx: &Ctx<'js>, name: &str, e: rquickjs::Error, kind: &str) -> rquickjs::Error {
    if !e.is_exception() {
        return e;
    }
    let caught = ctx.catch();
    let (kind, message, line) = match caught
        .as_object()
        .and_then(|o| Exception::from_object(o.clone()))
    {
        Some(ex) => {
            let kind: String = ex.get("name").unwrap_or_else(|_| kind.into());
            let line = ex
                .get::<_, Option<i32>>("lineNumber")
                .ok()
                .flatten()
                .or_else(|| ex.stack().as_deref().and_then(|s| line_in_stack(s, name)));
            (kind, ex.message().unwrap_or_default(), line)
        }
        None => (kind.to_owned(), format!("{caught:?}"), None),
    };
    if message.starts_with(&format!("{kind} in module '")) {
        // Already named, by the load of a module this one imports.
        return ctx.throw(caught);
    }
    let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
    // Thrown with the original error's name, so the text reads "ReferenceError in module
    // 'x.js': ..." and not "SyntaxError: ReferenceError in module ...".
    let text = format!("{kind} in module '{name}'{at}: {message}");
    match Exception::from_message(ctx.clone(), &text) {
        Ok(ex) => {
            let _ = ex.set("name", kind.as_str());
            ctx.throw(ex.into_value())
        }
        Err(e) => e,
    }
}

/// Finds `name:LINE` in a QuickJS stack trace.
fn line_in_stack(stack: &str, name: &str) -> Option<i32> {
    let pat = format!("{name}:");
    let i = stack.find(&pat)? + pat.len();
    let digits: String = stack[i..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

pub(crate) fn js_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_specifiers_resolve_against_the_importer() {
        assert_eq!(
            resolve("index.js", "./wasm/processor.js"),
            "wasm/processor.js"
        );
        assert_eq!(resolve("lib/a/b.js", "../x.js"), "lib/x.js");
        assert_eq!(resolve("lib/b.js", "./c.js"), "lib/c.js");
        assert_eq!(resolve("", "index.js"), "index.js");
        assert_eq!(resolve("a.js", "../../x.js"), "x.js");
        assert_eq!(normalize("./wasm/processor.js"), "wasm/processor.js");
    }
}
