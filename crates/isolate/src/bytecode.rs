//! The built-in JavaScript (`js/web.js`, `js/prelude.js`, the `wasm` crate's WebAssembly API,
//! and the Node built-in modules under `js/node/`), compiled to QuickJS bytecode once per
//! process and loaded from bytecode by every isolate that uses it, so no isolate parses it.
//! The Node modules are compiled on first use (most processes never import them).
//!
//! Each file is a function expression; it is compiled as a module whose default export is that
//! function. The module names start with `/`, which no module-map name does after
//! normalization (see `modules::normalize`), so user code can never import them.

use std::sync::OnceLock;

use rquickjs::{Context, Ctx, Function, Module, Runtime, WriteOptions};

/// The compiled built-ins.
struct Compiled {
    web: Vec<u8>,
    prelude: Vec<u8>,
    webassembly: Vec<u8>,
}

const WEB_NAME: &str = "/functions/web.js";
const PRELUDE_NAME: &str = "/functions/prelude.js";
const WEBASSEMBLY_NAME: &str = "/functions/webassembly.js";

static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();

/// The Node built-in modules' sources (see `node.rs`), by the name `host.require` knows them.
const NODE_SOURCES: [(&str, &str); 4] = [
    ("errors", include_str!("js/node/errors.js")),
    ("buffer", include_str!("js/node/buffer.js")),
    ("events", include_str!("js/node/events.js")),
    ("util", include_str!("js/node/util.js")),
];

/// Each Node module's bytecode, compiled on first use.
static NODE_COMPILED: [OnceLock<Result<Vec<u8>, String>>; NODE_SOURCES.len()] =
    [const { OnceLock::new() }; NODE_SOURCES.len()];

/// Compiles function expressions (`(name, source)`), each as a module whose default export is
/// that function.
fn compile_all<const N: usize>(files: [(&str, &str); N]) -> Result<[Vec<u8>; N], String> {
    let rt = Runtime::new().map_err(|e| e.to_string())?;
    let ctx = Context::full(&rt).map_err(|e| e.to_string())?;
    ctx.with(|ctx| {
        let mut out: [Vec<u8>; N] = std::array::from_fn(|_| Vec::new());
        for (slot, (name, src)) in out.iter_mut().zip(files) {
            let module = Module::declare(ctx.clone(), name, format!("export default {src};"))
                .map_err(|e| describe(&ctx, name, e))?;
            *slot = module
                .write(WriteOptions {
                    strip_source: true,
                    ..WriteOptions::default()
                })
                .map_err(|e| describe(&ctx, name, e))?;
        }
        Ok(out)
    })
}

fn compile() -> Result<Compiled, String> {
    let [web, prelude, webassembly] = compile_all([
        (WEB_NAME, include_str!("js/web.js")),
        (PRELUDE_NAME, include_str!("js/prelude.js")),
        (WEBASSEMBLY_NAME, wasm::JS_API),
    ])?;
    Ok(Compiled {
        web,
        prelude,
        webassembly,
    })
}

fn describe(ctx: &Ctx<'_>, name: &str, e: rquickjs::Error) -> String {
    if e.is_exception() {
        format!("{name}: {:?}", ctx.catch())
    } else {
        format!("{name}: {e}")
    }
}

fn compiled() -> Result<&'static Compiled, String> {
    COMPILED.get_or_init(compile).as_ref().map_err(Clone::clone)
}

/// Compiles the built-ins now (they are otherwise compiled by the first isolate).
pub(crate) fn warm_up() -> Result<(), String> {
    compiled().map(|_| ())
}

/// Loads one compiled built-in into `ctx` and returns its function.
fn load<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> rquickjs::Result<Function<'js>> {
    // SAFETY: `bytes` came from `Module::write` in this very process (same QuickJS build, same
    // endianness), and are never modified afterwards.
    let module = unsafe { Module::load(ctx.clone(), bytes) }?;
    let (module, _done) = module.eval()?;
    module.get("default")
}

/// `js/web.js`'s function, in `ctx`.
pub(crate) fn web<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
    let c = compiled().map_err(|m| rquickjs::Exception::throw_internal(ctx, &m))?;
    load(ctx, &c.web)
}

/// `js/prelude.js`'s function, in `ctx`.
pub(crate) fn prelude<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
    let c = compiled().map_err(|m| rquickjs::Exception::throw_internal(ctx, &m))?;
    load(ctx, &c.prelude)
}

/// The function of Node module `name` (`errors`, `buffer`, `events`, `util`), in `ctx`; `None`
/// for any other name.
pub(crate) fn node_module<'js>(
    ctx: &Ctx<'js>,
    name: &str,
) -> rquickjs::Result<Option<Function<'js>>> {
    let Some(i) = NODE_SOURCES.iter().position(|(n, _)| *n == name) else {
        return Ok(None);
    };
    let bytes = NODE_COMPILED[i]
        .get_or_init(|| {
            let (n, src) = NODE_SOURCES[i];
            let [bytes] = compile_all([(&format!("/functions/node/{n}.js"), src)])?;
            Ok(bytes)
        })
        .as_ref()
        .map_err(|m| rquickjs::Exception::throw_internal(ctx, m))?;
    load(ctx, bytes).map(Some)
}

/// The WebAssembly API's function (see `wasm::JS_API`), in `ctx`.
pub(crate) fn webassembly<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
    let c = compiled().map_err(|m| rquickjs::Exception::throw_internal(ctx, &m))?;
    load(ctx, &c.webassembly)
}

#[cfg(test)]
mod tests {
    #[test]
    fn built_ins_compile_to_bytecode() {
        super::warm_up().expect("web.js, prelude.js and webassembly.js compile");
    }

    #[test]
    fn node_modules_compile_to_bytecode() {
        for (name, src) in super::NODE_SOURCES {
            super::compile_all([(name, src)]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
