//! The Node built-in modules a function may import: `node:buffer`, `node:events`, `node:util`
//! (also by their bare names `buffer`, `events`, `util`, which win over any module of that name
//! in the module map, as a built-in wins over a package in Node). Their code is
//! `js/node/*.js`, compiled to bytecode once per process (`bytecode::node_module`) and
//! evaluated in an isolate only when something there first imports or requires one, so a
//! function that imports none pays nothing for them.
//!
//! `js/web.js` keeps each evaluated module (`globalThis.__functions_node(name)`, a
//! non-writable hook); the module loader declares `node:NAME` as an ES module whose default
//! export is that object and whose named exports are its own enumerable keys (as Node's ES
//! module facade of a built-in does), and a CommonJS `require("events")` gets the same object.
//! Other Node built-ins are not provided: the deploy refuses them (crates/bundle), and at run
//! time they are not in the module map.

use rquickjs::{Array, Ctx, Exception, Function, Object, Value as JsValue};

/// The Node built-in modules provided, by bare name. The bundle crate keeps the same list
/// (`bundle::build::NODE_BUILTINS`; a test in the server crate checks they agree).
pub const NODE_BUILTINS: [&str; 3] = ["buffer", "events", "util"];

/// The module-map name (`node:NAME`) a specifier names when it is a provided Node built-in:
/// `NAME` or `node:NAME`.
pub(crate) fn builtin(specifier: &str) -> Option<&'static str> {
    let bare = specifier.strip_prefix("node:").unwrap_or(specifier);
    match NODE_BUILTINS.iter().position(|n| *n == bare)? {
        0 => Some("node:buffer"),
        1 => Some("node:events"),
        _ => Some("node:util"),
    }
}

/// The ES module source of built-in `module` (a name [`builtin`] returned), evaluating the
/// module now if nothing in this isolate has yet.
pub(crate) fn module_source(ctx: &Ctx<'_>, module: &str) -> rquickjs::Result<String> {
    let bare = module.strip_prefix("node:").unwrap_or(module);
    let hook: Function<'_> = ctx.globals().get("__functions_node")?;
    let exports: JsValue<'_> = hook.call((bare,))?;
    let keys: Vec<String> = match exports.as_object() {
        Some(o) => o.keys::<String>().collect::<rquickjs::Result<_>>()?,
        None => Vec::new(),
    };
    let name = crate::modules::js_string(bare);
    let mut src = format!("const m = globalThis.__functions_node({name});\nexport default m;\n");
    for key in keys.iter().filter(|k| is_export_name(k)) {
        src.push_str(&format!("export const {key} = m.{key};\n"));
    }
    Ok(src)
}

/// JavaScript's reserved words (none can be `export const`'s name).
const RESERVED: [&str; 46] = [
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// A key that can be written as `export const KEY`: an identifier, not a reserved word.
fn is_export_name(key: &str) -> bool {
    let mut chars = key.chars();
    let starts = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$');
    starts
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !RESERVED.contains(&key)
}

/// Adds the natives the Node modules need to `native`: `nodeModule(name)` (a module's
/// function, from bytecode) and the brand checks only the engine can make.
pub(crate) fn install_natives<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    native.set(
        "nodeModule",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, name: String| -> rquickjs::Result<Function<'js>> {
                crate::bytecode::node_module(&ctx, &name)?.ok_or_else(|| {
                    Exception::throw_reference(&ctx, &format!("no Node built-in module '{name}'"))
                })
            },
        )?,
    )?;
    native.set(
        "isPromise",
        Function::new(ctx.clone(), |v: JsValue<'js>| v.is_promise())?,
    )?;
    native.set(
        "isNativeError",
        Function::new(ctx.clone(), |v: JsValue<'js>| v.is_error())?,
    )?;
    native.set(
        "isProxy",
        Function::new(ctx.clone(), |v: JsValue<'js>| v.is_proxy())?,
    )?;
    // [0] pending, [1, value] fulfilled, [2, reason] rejected.
    native.set(
        "promiseState",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, v: JsValue<'js>| -> rquickjs::Result<Array<'js>> {
                let out = Array::new(ctx.clone())?;
                let Some(p) = v.into_promise() else {
                    return Err(Exception::throw_type(&ctx, "not a promise"));
                };
                match p.result::<JsValue<'js>>() {
                    None => out.set(0, 0)?,
                    Some(Ok(value)) => {
                        out.set(0, 1)?;
                        out.set(1, value)?;
                    }
                    Some(Err(_)) => {
                        out.set(0, 2)?;
                        out.set(1, ctx.catch())?;
                    }
                }
                Ok(out)
            },
        )?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_prefixed_names_are_the_same_builtin() {
        assert_eq!(builtin("buffer"), Some("node:buffer"));
        assert_eq!(builtin("node:events"), Some("node:events"));
        assert_eq!(builtin("util"), Some("node:util"));
        assert_eq!(builtin("node:fs"), None);
        assert_eq!(builtin("fs"), None);
        assert_eq!(builtin("buffer/"), None);
        assert_eq!(builtin("./util"), None);
        assert_eq!(builtin("util/types"), None);
    }

    #[test]
    fn export_names_are_identifiers() {
        assert!(is_export_name("Buffer"));
        assert!(is_export_name("kMaxLength"));
        assert!(!is_export_name("default"));
        assert!(!is_export_name("a-b"));
        assert!(!is_export_name("1x"));
        assert!(!is_export_name(""));
    }
}
