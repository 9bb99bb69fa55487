//! CommonJS modules: the ES module wrapper a `cjs`/`commonJsModule` is loaded as, with a
//! synchronous `require()`.
//!
//! `require()` must return at once, but modules load through QuickJS's ES module graph. So
//! the wrapper imports, statically, every module the source names in a literal
//! `require("…")` call that the module map (or the built-in module) can satisfy, and
//! `require` looks the specifier up among those imports:
//!
//! | required module | `require()` returns |
//! |---|---|
//! | CommonJS | its `module.exports` |
//! | text, data, JSON | the value (string, `ArrayBuffer`, parsed JSON) |
//! | ES module, `cloudflare:workers` | the module namespace (as Node's `require(esm)`) |
//! | Node built-in (`events`, `node:buffer`, ...) | the module object (`require("events")` is `EventEmitter`) |
//!
//! A specifier that is not a string literal, or that names nothing in the module map, throws
//! when `require` is called (not at load), so `try { require("fs") } catch {}` still loads.
//! Importers of a CommonJS module get `module.exports` as the default export.

use crate::config::ModuleSource;
use crate::modules::{js_string, resolve, BUILTIN, CAPNWEB};

/// The ES module source that runs CommonJS `src` (module `name`); `lookup` finds a resolved
/// module-map name's source, if the map has it.
pub(crate) fn wrapper<'m>(
    name: &str,
    src: &str,
    lookup: impl Fn(&str) -> Option<&'m ModuleSource>,
) -> String {
    let mut imports = String::new();
    let mut table = String::new();
    for (i, spec) in literal_requires(src).iter().enumerate() {
        let (target, namespace) = if spec == BUILTIN || spec == CAPNWEB {
            (spec.to_owned(), true)
        } else if let Some(module) = crate::node::builtin(spec) {
            (module.to_owned(), false)
        } else {
            let resolved = resolve(name, spec);
            match lookup(&resolved) {
                None => continue,
                Some(ModuleSource::EsModule(_)) => (resolved, true),
                Some(_) => (resolved, false),
            }
        };
        imports.push_str(&format!(
            "import * as __r{i} from {};\n",
            js_string(&target)
        ));
        let value = if namespace {
            format!("__r{i}")
        } else {
            format!("__r{i}.default")
        };
        table.push_str(&format!("[{}, {value}],", js_string(spec)));
    }
    let name_js = js_string(name);
    format!(
        "{imports}\
         const __required = new Map([{table}]);\n\
         const module = {{ exports: {{}} }};\n\
         function require(spec) {{\n\
           if (__required.has(spec)) return __required.get(spec);\n\
           const e = new Error(`Cannot find module '${{spec}}' required from ` + {name_js} + \
         `: require() takes a string literal naming a module in the module map`);\n\
           e.code = 'MODULE_NOT_FOUND';\n\
           throw e;\n\
         }}\n\
         (function (exports, require, module) {{\n{src}\n}})(module.exports, require, module);\n\
         export default module.exports;\n"
    )
}

/// The distinct string literals `s` in `require(s)` calls, in order of first appearance.
fn literal_requires(src: &str) -> Vec<String> {
    let bytes = src.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(found) = src[from..].find("require") {
        let start = from + found;
        from = start + "require".len();
        let preceded_by_ident = start > 0 && {
            let c = bytes[start - 1];
            c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'.'
        };
        if preceded_by_ident {
            continue;
        }
        let rest = src[from..].trim_start();
        let Some(rest) = rest.strip_prefix('(') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(quote) = rest
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\'' | '`'))
        else {
            continue;
        };
        let body = &rest[1..];
        let Some(end) = body.find(quote) else {
            continue;
        };
        let spec = &body[..end];
        let closed = body[end + 1..].trim_start().starts_with(')');
        let escaped = spec.contains(['\\', '\n']);
        let interpolated = quote == '`' && spec.contains("${");
        if closed && !escaped && !interpolated && !out.iter().any(|s| s == spec) {
            out.push(spec.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::literal_requires;

    #[test]
    fn literal_requires_are_found_and_others_ignored() {
        let src = r#"
            const a = require("./a.js");
            const b = require( './b.cjs' );
            const c = require(`./c.txt`);
            const again = require("./a.js");
            const dynamic = require(name);
            const tpl = require(`./${x}`);
            obj.require("./not-a-call.js");
            myrequire("./nope.js");
        "#;
        assert_eq!(literal_requires(src), ["./a.js", "./b.cjs", "./c.txt"]);
    }
}
