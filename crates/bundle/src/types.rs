//! `functions types`: TypeScript declarations of a deployed function's RPC surface and of
//! its `Env`, from the bundle's sources.
//!
//! The RPC surface is the class named by the main module's `export default { rpc: Class }`
//! (the seed's convention), else the default export when it is a class extending
//! `WorkerEntrypoint`; every `export class X extends WorkerEntrypoint` is an entrypoint. A
//! method's declared signature is copied from TypeScript sources (its return type wrapped in
//! `Promise<Awaited<…>>`, as every RPC call answers a promise); where there is no signature
//! (JavaScript, or none written) parameters are `any` and the result `Promise<any>`. Methods
//! of base classes in the bundle (`FunctionTarget`) are included. A type named in a signature
//! is copied when it is an interface or type alias of that module, and declared `any`
//! otherwise, so the output stands alone. A base class imported from a package is found by
//! resolving the import as the deploy did, with the bundle's export conditions (or those
//! given to [`declarations_with`]: `functions types --conditions`). `Env` has one member per binding and var, typed
//! with our own declarations of the binding types (KV, blob, service, loader).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use oxc_allocator::Allocator;
use oxc_ast::ast::*;
use oxc_ast_visit::{walk, Visit};
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType};
use serde_json::Value;

use crate::build::BuildOptions;
use crate::fs::SourceFs;
use crate::manifest::{Binding, Bundle, Module};

/// Our declarations of the binding types, as a function sees them on `env`.
pub const BINDING_TYPES: &str = r#"/** A KV namespace binding (`{"type": "kv"}`): Workers KV semantics. */
export interface KVNamespace {
  get(key: string, type?: "text"): Promise<string | null>;
  get<T = unknown>(key: string, type: "json"): Promise<T | null>;
  get(key: string, type: "arrayBuffer"): Promise<ArrayBuffer | null>;
  get(key: string, options?: { type?: "text" | "json" | "arrayBuffer" | "stream"; cacheTtl?: number }): Promise<any>;
  getWithMetadata<M = unknown>(key: string, type?: "text" | "json" | "arrayBuffer" | "stream"): Promise<{ value: any; metadata: M | null }>;
  put(key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream, options?: { expiration?: number; expirationTtl?: number; metadata?: unknown }): Promise<void>;
  delete(key: string): Promise<void>;
  list<M = unknown>(options?: { prefix?: string; limit?: number; cursor?: string }): Promise<{ keys: { name: string; expiration?: number; metadata?: M }[]; list_complete: boolean; cursor?: string }>;
}

/** One object of a blob bucket. */
export interface BlobObject {
  key: string;
  size: number;
  etag: string;
  uploaded: Date;
  httpMetadata?: Record<string, string>;
  customMetadata?: Record<string, string>;
}

/** An object with its body. */
export interface BlobObjectBody extends BlobObject {
  body: ReadableStream;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** A blob bucket binding (`{"type": "blob"}`): R2 semantics. */
export interface BlobBucket {
  get(key: string): Promise<BlobObjectBody | null>;
  head(key: string): Promise<BlobObject | null>;
  put(key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream | null, options?: { httpMetadata?: Record<string, string>; customMetadata?: Record<string, string> }): Promise<BlobObject>;
  delete(keys: string | string[]): Promise<void>;
  list(options?: { prefix?: string; limit?: number; cursor?: string; delimiter?: string }): Promise<{ objects: BlobObject[]; truncated: boolean; cursor?: string; delimitedPrefixes: string[] }>;
}
export type R2Bucket = BlobBucket;

/** A service binding (`{"type": "service"}`): another function, by id. */
export interface Fetcher {
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
  [method: string]: any;
}

/** What `env.LOADER.get(id, getCode)` takes: workerd's WorkerCode. */
export interface WorkerCode {
  compatibilityDate?: string;
  compatibilityFlags?: string[];
  mainModule: string;
  modules: Record<string, string | { js?: string; esModule?: string; cjs?: string; commonJsModule?: string; text?: string; data?: ArrayBuffer | string; json?: unknown; wasm?: ArrayBuffer | string }>;
  env?: Record<string, unknown>;
  globalOutbound?: Fetcher | null;
  limits?: { cpuMs?: number; memoryMb?: number };
}

/** A loaded worker. */
export interface WorkerStub {
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
  getEntrypoint(name?: string): any;
  getRpcTarget(): any;
}

/** The Worker Loader binding (`{"type": "loader"}`). */
export interface WorkerLoader {
  get(id: string, getCode: () => WorkerCode | Promise<WorkerCode>): WorkerStub;
  load(code: WorkerCode): WorkerStub;
}
"#;

/// Names TypeScript's own libraries declare: never redeclared as `any`.
const GLOBAL_TYPES: &[&str] = &[
    "Array",
    "ReadonlyArray",
    "Promise",
    "PromiseLike",
    "Awaited",
    "Record",
    "Partial",
    "Required",
    "Readonly",
    "Pick",
    "Omit",
    "Exclude",
    "Extract",
    "NonNullable",
    "ReturnType",
    "Parameters",
    "InstanceType",
    "Map",
    "Set",
    "WeakMap",
    "WeakSet",
    "ReadonlyMap",
    "ReadonlySet",
    "Date",
    "RegExp",
    "Error",
    "TypeError",
    "RangeError",
    "Uint8Array",
    "Int8Array",
    "Uint16Array",
    "Int16Array",
    "Uint32Array",
    "Int32Array",
    "Float32Array",
    "Float64Array",
    "BigInt64Array",
    "BigUint64Array",
    "ArrayBuffer",
    "ArrayBufferView",
    "DataView",
    "Object",
    "Function",
    "String",
    "Number",
    "Boolean",
    "Symbol",
    "BigInt",
    "Iterable",
    "AsyncIterable",
    "Iterator",
    "AsyncIterator",
    "Generator",
    "AsyncGenerator",
    "Request",
    "Response",
    "Headers",
    "URL",
    "URLSearchParams",
    "ReadableStream",
    "WritableStream",
    "TransformStream",
    "Blob",
    "FormData",
    "RequestInit",
    "ResponseInit",
    "HeadersInit",
    "BodyInit",
    "TextEncoder",
    "TextDecoder",
    "AbortSignal",
    "WebSocket",
    "Uppercase",
    "Lowercase",
    "Capitalize",
    "Uncapitalize",
    "ThisType",
    "JSON",
    "Math",
];

/// The declarations for a bundle (`version` goes in the header comment), packages resolved
/// with the bundle's own export conditions.
pub fn declarations(id: &str, version: Option<u64>, bundle: &Bundle) -> String {
    declarations_with(id, version, bundle, &BuildOptions::for_bundle(bundle))
}

/// [`declarations`], packages resolved with `opts`' export conditions.
pub fn declarations_with(
    id: &str,
    version: Option<u64>,
    bundle: &Bundle,
    opts: &BuildOptions,
) -> String {
    let sources = bundle.sources.as_ref().unwrap_or(&bundle.modules);
    let mut out = String::new();
    out.push_str(&format!(
        "// Generated by `functions types {id}`{}. Do not edit: run it again after a deploy.\n\
         // A client: `newWebSocketRpcSession<Api>(url)` (npm capnweb) on /_rpc/{id}.\n\n",
        version
            .map(|v| format!(" from version {v}"))
            .unwrap_or_default()
    ));
    out.push_str(BINDING_TYPES);
    out.push('\n');
    out.push_str(&env_interface(bundle));
    let mut gen = Gen {
        sources: sources
            .iter()
            .filter_map(|(k, m)| match m {
                Module::EsModule(s) | Module::TypeScript(s) | Module::CommonJs(s) => {
                    Some((k.clone(), s.clone()))
                }
                _ => None,
            })
            .collect(),
        emitted_types: BTreeMap::new(),
        any_types: BTreeSet::new(),
        classes_done: HashSet::new(),
        body: String::new(),
        fs: crate::build::modules_fs(sources),
        opts: opts.clone(),
    };
    let main = bundle.main_module.clone();
    let surface = gen.surface(&main);
    out.push_str(&gen.body);
    for text in gen.emitted_types.values() {
        out.push_str(text);
        out.push_str("\n\n");
    }
    for name in &gen.any_types {
        if !gen.emitted_types.contains_key(name) {
            out.push_str(&format!("export type {name} = any;\n"));
        }
    }
    out.push_str(&surface);
    out
}

fn json_type(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(a) => match a.first() {
            Some(f) => format!("{}[]", json_type(f)),
            None => "unknown[]".into(),
        },
        Value::Object(o) => {
            let fields: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{}: {}", quote_key(k), json_type(v)))
                .collect();
            format!("{{ {} }}", fields.join("; "))
        }
    }
}

fn quote_key(k: &str) -> String {
    let ident = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        k.to_owned()
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

fn env_interface(bundle: &Bundle) -> String {
    let mut out = String::from(
        "/** The function's `env`: its vars and bindings. */\nexport interface Env {\n",
    );
    for (k, v) in &bundle.env {
        out.push_str(&format!("  {}: {};\n", quote_key(k), json_type(v)));
    }
    for (k, b) in &bundle.bindings {
        let t = match b {
            Binding::Var(v) => json_type(v),
            Binding::Service { .. } => "Fetcher".into(),
            Binding::Kv { .. } => "KVNamespace".into(),
            Binding::Blob { .. } => "BlobBucket".into(),
            Binding::Loader => "WorkerLoader".into(),
        };
        out.push_str(&format!("  {}: {t};\n", quote_key(k)));
    }
    out.push_str("}\n\n");
    out
}

struct Gen {
    sources: BTreeMap<String, String>,
    /// Interfaces and type aliases copied from the sources, by name.
    emitted_types: BTreeMap<String, String>,
    /// Type names declared `any` (not found).
    any_types: BTreeSet<String>,
    classes_done: HashSet<String>,
    /// Interfaces of classes.
    body: String,
    /// The sources as files, to resolve package imports in.
    fs: SourceFs,
    /// How the deploy resolved them.
    opts: BuildOptions,
}

/// A class found in a module.
struct ClassInfo {
    methods: Vec<String>,
    base: Option<String>,
}

fn lang_of(name: &str) -> SourceType {
    let ts = name.ends_with(".ts") || name.ends_with(".mts") || name.ends_with(".cts");
    SourceType::mjs().with_typescript(ts)
}

fn resolve_relative(base: &str, spec: &str, sources: &BTreeMap<String, String>) -> Option<String> {
    if !(spec.starts_with("./") || spec.starts_with("../")) {
        return None;
    }
    let dir = base.rfind('/').map_or("", |i| &base[..i]);
    let mut parts: Vec<&str> = if dir.is_empty() {
        vec![]
    } else {
        dir.split('/').collect()
    };
    for seg in spec.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    let stem = joined
        .strip_suffix(".js")
        .or_else(|| joined.strip_suffix(".mjs"))
        .unwrap_or(&joined)
        .to_owned();
    [
        joined.clone(),
        format!("{stem}.ts"),
        format!("{stem}.mts"),
        format!("{joined}.ts"),
        format!("{joined}.js"),
        format!("{joined}/index.ts"),
        format!("{joined}/index.js"),
    ]
    .into_iter()
    .find(|c| sources.contains_key(c))
}

impl Gen {
    /// Declares the main module's surface; returns the `Api` and entrypoint declarations.
    fn surface(&mut self, main: &str) -> String {
        let Some(src) = self.sources.get(main).cloned() else {
            return "/** No RPC class was found: any method, any result. */\nexport type Api = { [method: string]: (...args: any[]) => Promise<any> };\n".into();
        };
        let allocator = Allocator::default();
        let ret = Parser::new(&allocator, &src, lang_of(main)).parse();
        let mut rpc: Option<String> = None;
        let mut default_class: Option<String> = None;
        let mut entrypoints: Vec<String> = Vec::new();
        for stmt in &ret.program.body {
            match stmt {
                Statement::ExportDefaultDeclaration(d) => match &d.declaration {
                    ExportDefaultDeclarationKind::ObjectExpression(o) => {
                        for p in &o.properties {
                            if let ObjectPropertyKind::ObjectProperty(p) = p {
                                if p.key.static_name().as_deref() == Some("rpc") {
                                    if let Expression::Identifier(id) = &p.value {
                                        rpc = Some(id.name.to_string());
                                    }
                                }
                            }
                        }
                    }
                    ExportDefaultDeclarationKind::ClassDeclaration(c) => {
                        default_class = c.id.as_ref().map(|i| i.name.to_string());
                    }
                    ExportDefaultDeclarationKind::Identifier(i) => {
                        default_class = Some(i.name.to_string());
                    }
                    _ => {}
                },
                Statement::ExportDeclaration(e) => {
                    if let Declaration::ClassDeclaration(c) = &e.declaration {
                        if let (Some(id), Some(h)) = (&c.id, &c.heritage) {
                            if matches!(&h.expression, Expression::Identifier(b) if b.name == "WorkerEntrypoint")
                            {
                                entrypoints.push(id.name.to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let mut out = String::new();
        let api = rpc.or(default_class);
        match &api {
            Some(name) if self.declare_class(main, name) && name == "Api" => {}
            Some(name) if self.classes_done.contains(&format!("{main}#{name}")) => {
                out.push_str(&format!(
                    "/** The function's RPC target: what `/_rpc/<id>` serves. */\nexport type Api = {name};\n"
                ));
            }
            _ => out.push_str("/** No RPC class was found: any method, any result. */\nexport type Api = { [method: string]: (...args: any[]) => Promise<any> };\n"),
        }
        if !entrypoints.is_empty() {
            out.push_str("/** Named entrypoints (`export class X extends WorkerEntrypoint`). */\nexport interface Entrypoints {\n");
            for e in &entrypoints {
                if self.declare_class(main, e) {
                    out.push_str(&format!("  {e}: {e};\n"));
                }
            }
            out.push_str("}\n");
        }
        out
    }

    /// Declares class `name` as seen from `module` as an interface; false if not found.
    fn declare_class(&mut self, module: &str, name: &str) -> bool {
        let key = format!("{module}#{name}");
        if self.classes_done.contains(&key) {
            return true;
        }
        let Some((def_module, info)) = self.find_class(module, name, 0) else {
            return false;
        };
        self.classes_done.insert(key);
        let mut extends = String::new();
        if let Some(base) = &info.base {
            if base != "RpcTarget"
                && base != "WorkerEntrypoint"
                && self.declare_class(&def_module, base)
            {
                extends = format!(" extends {base}");
            }
        }
        self.body
            .push_str(&format!("export interface {name}{extends} {{\n"));
        for m in &info.methods {
            self.body.push_str("  ");
            self.body.push_str(m);
            self.body.push('\n');
        }
        self.body.push_str("}\n\n");
        true
    }

    fn find_class(
        &mut self,
        module: &str,
        name: &str,
        depth: usize,
    ) -> Option<(String, ClassInfo)> {
        if depth > 8 {
            return None;
        }
        let src = self.sources.get(module)?.clone();
        let allocator = Allocator::default();
        let ret = Parser::new(&allocator, &src, lang_of(module)).parse();
        let mut import_from: Option<(String, String)> = None;
        for stmt in &ret.program.body {
            let class = match stmt {
                Statement::ClassDeclaration(c) => Some(&**c),
                Statement::ExportDeclaration(e) => match &e.declaration {
                    Declaration::ClassDeclaration(c) => Some(&**c),
                    _ => None,
                },
                Statement::ExportDefaultDeclaration(d) => match &d.declaration {
                    ExportDefaultDeclarationKind::ClassDeclaration(c) => Some(&**c),
                    _ => None,
                },
                Statement::ImportDeclaration(i) => {
                    for s in i.specifiers.iter().flatten() {
                        if let ImportDeclarationSpecifier::ImportSpecifier(s) = s {
                            if s.local.name == name {
                                import_from = Some((
                                    i.source.value.to_string(),
                                    s.imported.name().to_string(),
                                ));
                            }
                        }
                    }
                    None
                }
                _ => None,
            };
            let Some(c) = class else { continue };
            if c.id.as_ref().is_none_or(|i| i.name != name) {
                continue;
            }
            let info = self.class_info(module, &src, c);
            return Some((module.to_owned(), info));
        }
        let (spec, imported) = import_from?;
        let target = resolve_relative(module, &spec, &self.sources).or_else(|| {
            crate::build::resolve_import(&self.fs, &self.opts, module, &spec)
                .filter(|t| self.sources.contains_key(t))
        })?;
        let found = self.find_class(&target, &imported, depth + 1)?;
        Some(found)
    }

    fn class_info(&mut self, module: &str, src: &str, c: &Class<'_>) -> ClassInfo {
        let ts = lang_of(module).is_typescript();
        let base = c.heritage.as_ref().and_then(|h| match &h.expression {
            Expression::Identifier(i) => Some(i.name.to_string()),
            _ => None,
        });
        let mut methods = Vec::new();
        let mut names = TypeNames::default();
        for el in &c.body.body {
            let ClassElement::MethodDefinition(m) = el else {
                continue;
            };
            if m.kind != MethodDefinitionKind::Method
                || m.r#static
                || m.value.body.is_none()
                || matches!(
                    m.accessibility,
                    Some(TSAccessibility::Private | TSAccessibility::Protected)
                )
                || matches!(m.key, PropertyKey::PrivateIdentifier(_))
            {
                continue;
            }
            let Some(key) = m.key.static_name() else {
                continue;
            };
            if key.starts_with('_') || key == "fetch" || key == "constructor" {
                continue;
            }
            let f = &m.value;
            let text = |s: oxc_span::Span| src[s.start as usize..s.end as usize].to_owned();
            let type_params = f
                .type_parameters
                .as_ref()
                .map(|t| text(t.span))
                .unwrap_or_default();
            let mut params = Vec::new();
            for (i, p) in f.params.items.iter().enumerate() {
                let pname = match &p.pattern {
                    BindingPattern::BindingIdentifier(id) => id.name.to_string(),
                    _ => format!("arg{i}"),
                };
                let opt = if p.optional || p.initializer.is_some() {
                    "?"
                } else {
                    ""
                };
                let ty = match &p.type_annotation {
                    Some(t) if ts => {
                        names.visit_ts_type_annotation(t);
                        text(t.type_annotation.span())
                    }
                    _ => "any".into(),
                };
                params.push(format!("{pname}{opt}: {ty}"));
            }
            if let Some(rest) = &f.params.rest {
                let ty = match &rest.type_annotation {
                    Some(t) if ts => {
                        names.visit_ts_type_annotation(t);
                        text(t.type_annotation.span())
                    }
                    _ => "any[]".into(),
                };
                let pname = match &rest.rest.argument {
                    BindingPattern::BindingIdentifier(id) => id.name.to_string(),
                    _ => "rest".into(),
                };
                params.push(format!("...{pname}: {ty}"));
            }
            let ret = match &f.return_type {
                Some(t) if ts => {
                    names.visit_ts_type_annotation(t);
                    format!("Promise<Awaited<{}>>", text(t.type_annotation.span()))
                }
                _ => "Promise<any>".into(),
            };
            methods.push(format!("{key}{type_params}({}): {ret};", params.join(", ")));
            // Type parameters of the method are not module types.
            if let Some(tp) = &f.type_parameters {
                for p in &tp.params {
                    names.declared.insert(p.name.name.to_string());
                }
            }
        }
        self.copy_types(module, src, names);
        ClassInfo { methods, base }
    }

    /// Copies the interfaces and type aliases `names` refers to from `module`, or declares
    /// them `any`.
    fn copy_types(&mut self, module: &str, src: &str, names: TypeNames) {
        let mut pending: Vec<String> = names
            .used
            .into_iter()
            .filter(|n| !names.declared.contains(n))
            .collect();
        let allocator = Allocator::default();
        let ret = Parser::new(&allocator, src, lang_of(module)).parse();
        let mut seen = HashSet::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name.clone()) || GLOBAL_TYPES.contains(&name.as_str()) {
                continue;
            }
            if self.emitted_types.contains_key(&name) {
                continue;
            }
            let mut found = false;
            for stmt in &ret.program.body {
                let decl = match stmt {
                    Statement::ExportDeclaration(e) => Some(&e.declaration),
                    other => other.as_declaration(),
                };
                let Some(decl) = decl else { continue };
                let (decl_name, span, is_type) = match decl {
                    Declaration::TSInterfaceDeclaration(i) => (i.id.name.to_string(), i.span, true),
                    Declaration::TSTypeAliasDeclaration(t) => (t.id.name.to_string(), t.span, true),
                    Declaration::TSEnumDeclaration(e) => (e.id.name.to_string(), e.span, false),
                    _ => continue,
                };
                if decl_name != name {
                    continue;
                }
                found = true;
                if !is_type {
                    break; // an enum: declared `any` below
                }
                let mut more = TypeNames::default();
                match decl {
                    Declaration::TSInterfaceDeclaration(i) => {
                        more.visit_ts_interface_declaration(i);
                        if let Some(tp) = &i.type_parameters {
                            for p in &tp.params {
                                more.declared.insert(p.name.name.to_string());
                            }
                        }
                    }
                    Declaration::TSTypeAliasDeclaration(t) => {
                        more.visit_ts_type_alias_declaration(t);
                        if let Some(tp) = &t.type_parameters {
                            for p in &tp.params {
                                more.declared.insert(p.name.name.to_string());
                            }
                        }
                    }
                    _ => {}
                }
                pending.extend(
                    more.used
                        .into_iter()
                        .filter(|n| !more.declared.contains(n) && *n != name),
                );
                let text = &src[span.start as usize..span.end as usize];
                self.emitted_types
                    .insert(name.clone(), format!("export {text}"));
                break;
            }
            if !found || !self.emitted_types.contains_key(&name) {
                self.any_types.insert(name);
            }
        }
    }
}

/// Type names a type refers to.
#[derive(Default)]
struct TypeNames {
    used: BTreeSet<String>,
    declared: HashSet<String>,
}

impl<'a> Visit<'a> for TypeNames {
    fn visit_ts_type_name(&mut self, it: &TSTypeName<'a>) {
        match it {
            TSTypeName::IdentifierReference(i) => {
                self.used.insert(i.name.to_string());
            }
            TSTypeName::QualifiedName(q) => {
                let mut left = &q.left;
                while let TSTypeName::QualifiedName(inner) = left {
                    left = &inner.left;
                }
                if let TSTypeName::IdentifierReference(i) = left {
                    self.used.insert(i.name.to_string());
                }
            }
            TSTypeName::ThisExpression(_) => {}
        }
    }

    fn visit_ts_mapped_type(&mut self, it: &TSMappedType<'a>) {
        self.declared.insert(it.key.name.to_string());
        walk::walk_ts_mapped_type(self, it);
    }

    fn visit_ts_infer_type(&mut self, it: &TSInferType<'a>) {
        self.declared
            .insert(it.type_parameter.name.name.to_string());
        walk::walk_ts_infer_type(self, it);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_the_rpc_class_with_its_signatures_and_base_class() {
        let bundle = Bundle::from_json(
            br#"{
            "mainModule": "index.ts",
            "modules": {
                "index.ts": "import { Base } from './base';\ninterface Shape { w: number; h: Unit }\nexport class Api extends Base {\n  area(s: Shape): number { return 1 }\n  async later(n?: number): Promise<string[]> { return [] }\n  untyped(a, b) {}\n  private hidden() {}\n}\nexport default { rpc: Api };",
                "base.ts": "import { RpcTarget } from 'cloudflare:workers';\nexport abstract class Base extends RpcTarget {\n  getMetrics(): Metrics { return { n: 1 } }\n  protected invoke() {}\n}"
            },
            "bindings": { "KV": {"type": "kv", "namespace": "n"}, "V": "x", "L": {"type": "loader"} }
        }"#,
        )
        .expect("bundle");
        let d = declarations("f", Some(3), &bundle);
        assert!(d.contains("export interface Api extends Base {"), "{d}");
        assert!(
            d.contains("area(s: Shape): Promise<Awaited<number>>;"),
            "{d}"
        );
        assert!(
            d.contains("later(n?: number): Promise<Awaited<Promise<string[]>>>;"),
            "{d}"
        );
        assert!(d.contains("untyped(a: any, b: any): Promise<any>;"), "{d}");
        assert!(!d.contains("hidden"), "{d}");
        assert!(
            d.contains("export interface Base {\n  getMetrics(): Promise<Awaited<Metrics>>;"),
            "{d}"
        );
        assert!(
            d.contains("export interface Shape { w: number; h: Unit }"),
            "{d}"
        );
        assert!(d.contains("export type Unit = any;"), "{d}");
        assert!(d.contains("export type Metrics = any;"), "{d}");
        assert!(
            !d.contains("export type Api"),
            "the class is already named Api: {d}"
        );
        assert!(
            d.contains("  KV: KVNamespace;\n  V: string;\n  L: WorkerLoader;"),
            "{d}"
        );
    }

    #[test]
    fn a_base_class_from_a_package_is_found_with_the_conditions() {
        let bundle = |conditions: &str| {
            Bundle::from_json(format!(r#"{{
                "mainModule": "index.ts",
                "modules": {{
                    "index.ts": "import {{ Base }} from 'base-pkg';\nexport class Api extends Base {{\n  own(): number {{ return 1 }}\n}}\nexport default {{ rpc: Api }};",
                    "node_modules/base-pkg/package.json": {{"json": {{"name": "base-pkg", "exports": {{"custom": "./custom.js", "default": "./default.js"}}}}}},
                    "node_modules/base-pkg/custom.js": "export class Base {{ fromCustom(a) {{}} }}",
                    "node_modules/base-pkg/default.js": "export class Base {{ fromDefault(a) {{}} }}"
                }}{conditions}
            }}"#).as_bytes())
            .expect("bundle")
        };
        let plain = declarations("f", None, &bundle(""));
        assert!(
            plain.contains("export interface Api extends Base {"),
            "{plain}"
        );
        assert!(
            plain.contains("fromDefault(a: any): Promise<any>;"),
            "{plain}"
        );
        let stored = declarations("f", None, &bundle(r#", "conditions": ["custom"]"#));
        assert!(
            stored.contains("fromCustom(a: any): Promise<any>;"),
            "{stored}"
        );
        let given = declarations_with(
            "f",
            None,
            &bundle(""),
            &BuildOptions {
                conditions: vec!["custom".into()],
            },
        );
        assert!(
            given.contains("fromCustom(a: any): Promise<any>;"),
            "{given}"
        );
        assert!(!given.contains("fromDefault"), "{given}");
    }
}
