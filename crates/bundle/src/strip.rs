//! One script module, parsed with oxc: TypeScript's type-only syntax blanked out in place
//! (spaces, newlines kept, so every line and most columns stay where they were), the few
//! TypeScript constructs that have runtime meaning (enums, parameter properties) rewritten on
//! their own lines, and the module's import specifiers found for the resolver to rewrite.
//!
//! No source maps are needed: a stack trace or console position in the output names the same
//! line of the TypeScript file. The output is built by [`Parsed::finish`] once the caller
//! knows what each specifier resolves to.

use std::collections::HashSet;

use oxc_allocator::Allocator;
use oxc_ast::ast::*;
use oxc_ast_visit::{walk, Visit};
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType, Span};

use crate::error::{BuildError, Position};

/// What language a script module is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// JavaScript, an ES module.
    EsModule,
    /// JavaScript, CommonJS (or a `.js` file of a package with no module syntax).
    CommonJs,
    /// JavaScript of unknown kind (a package's `.js`): ES if it has module syntax.
    Unknown,
    /// TypeScript, an ES module (`.ts`, `.mts`).
    TypeScript,
    /// TypeScript, CommonJS (`.cts`).
    TypeScriptCommonJs,
}

impl Lang {
    /// The language of a file, by its name's extension; `None` if it is not a script.
    pub fn of(name: &str) -> Option<Lang> {
        if is_declaration_file(name) {
            return None;
        }
        Some(match name.rsplit_once('.').map(|(_, e)| e)? {
            "js" => Lang::Unknown,
            "mjs" => Lang::EsModule,
            "cjs" => Lang::CommonJs,
            "ts" | "mts" => Lang::TypeScript,
            "cts" => Lang::TypeScriptCommonJs,
            _ => return None,
        })
    }

    fn is_typescript(self) -> bool {
        matches!(self, Lang::TypeScript | Lang::TypeScriptCommonJs)
    }
}

/// True for `.d.ts`, `.d.mts`, `.d.cts` (types only; never part of a bundle).
pub fn is_declaration_file(name: &str) -> bool {
    name.ends_with(".d.ts") || name.ends_with(".d.mts") || name.ends_with(".d.cts")
}

/// How a module names another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// `import … from "x"`, `export … from "x"`, `import "x"`.
    Static,
    /// `import("x")` with a string literal.
    Dynamic,
    /// `require("x")` with a string literal (CommonJS only).
    Require,
}

/// One specifier a module names.
#[derive(Debug, Clone)]
pub struct ImportRef {
    /// The specifier as written.
    pub specifier: String,
    /// The string literal's span (quotes included).
    pub span: Span,
    /// How it is named.
    pub kind: ImportKind,
}

/// A parsed module: the blanked source, pending rewrites and the specifiers it names.
#[derive(Debug)]
pub struct Parsed {
    /// The source with type-only syntax blanked (same length as the original).
    blanked: Vec<u8>,
    /// Replacements `(start, end, text)`, applied in [`Parsed::finish`].
    replacements: Vec<(u32, u32, String)>,
    /// The specifiers, in source order.
    pub imports: Vec<ImportRef>,
    /// Whether the module is CommonJS (loaded through `require`'s wrapper).
    pub commonjs: bool,
}

impl Parsed {
    /// The output source, with each import whose literal span is a key of `rewrites`
    /// replaced by the JSON string of the value.
    pub fn finish(mut self, rewrites: &[(Span, String)]) -> String {
        for (span, to) in rewrites {
            self.replacements.push((span.start, span.end, quote(to)));
        }
        self.replacements.sort_by_key(|r| (r.0, r.1));
        let mut out = Vec::with_capacity(self.blanked.len() + 64);
        let mut at = 0usize;
        for (start, end, text) in &self.replacements {
            let (start, end) = (*start as usize, *end as usize);
            if start < at {
                continue; // inside an earlier replacement
            }
            // A replacement inside a blanked region (a type-only import's specifier) is dropped.
            if end > start
                && self.blanked[start..end]
                    .iter()
                    .all(|b| b.is_ascii_whitespace())
            {
                continue;
            }
            out.extend_from_slice(&self.blanked[at..start]);
            out.extend_from_slice(text.as_bytes());
            at = end;
        }
        out.extend_from_slice(&self.blanked[at..]);
        // Blanking replaces whole UTF-8 sequences byte by byte with spaces, so this holds.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Parses `source` (module `name`) and strips its types.
pub fn parse(name: &str, source: &str, lang: Lang) -> Result<Parsed, BuildError> {
    let allocator = Allocator::default();
    let ts = lang.is_typescript();
    let first = match lang {
        Lang::CommonJs | Lang::TypeScriptCommonJs => SourceType::cjs(),
        _ => SourceType::mjs(),
    }
    .with_typescript(ts);
    let mut ret = Parser::new(&allocator, source, first).parse();
    let mut commonjs = matches!(lang, Lang::CommonJs | Lang::TypeScriptCommonJs);
    if lang == Lang::Unknown {
        let has_module_syntax = ret.program.body.iter().any(|s| s.is_module_declaration());
        if ret.diagnostics.has_errors() || ret.panicked || !has_module_syntax {
            // Sloppy-mode CommonJS (a package's `.js` with no `import`/`export`).
            let again = Parser::new(&allocator, source, SourceType::cjs()).parse();
            if !again.diagnostics.has_errors() && !again.panicked {
                ret = again;
                commonjs = true;
            }
        }
    }
    if let Some(e) = ret.diagnostics.errors().next() {
        let offset = e.labels.first().map(|l| l.offset()).unwrap_or(0);
        return Err(BuildError::Syntax {
            at: Position::at(name, source, offset),
            message: e.message.to_string(),
        });
    }
    if ret.panicked {
        return Err(BuildError::Syntax {
            at: Position::at(name, source, 0),
            message: "the parser gave up".into(),
        });
    }
    let mut s = Stripper {
        name,
        src: source,
        ts,
        commonjs,
        buf: source.as_bytes().to_vec(),
        replacements: Vec::new(),
        imports: Vec::new(),
        value_refs: HashSet::new(),
        import_decls: Vec::new(),
        export_specs: Vec::new(),
        local_types: HashSet::new(),
        error: None,
    };
    if ts {
        s.collect_local_types(&ret.program.body);
    }
    s.visit_program(&ret.program);
    if let Some(e) = s.error.take() {
        return Err(e);
    }
    if ts {
        s.elide_type_only_imports();
    }
    Ok(Parsed {
        blanked: s.buf,
        replacements: s.replacements,
        imports: s.imports,
        commonjs,
    })
}

struct ImportDecl {
    span: Span,
    specifiers: Vec<(Span, String)>,
    has_specifier_list: bool,
}

struct Stripper<'s> {
    name: &'s str,
    src: &'s str,
    ts: bool,
    commonjs: bool,
    buf: Vec<u8>,
    replacements: Vec<(u32, u32, String)>,
    imports: Vec<ImportRef>,
    /// Names used as values (type positions are not walked).
    value_refs: HashSet<String>,
    import_decls: Vec<ImportDecl>,
    /// `export { a }` specifiers (no `from`): span and local name.
    export_specs: Vec<(Span, String)>,
    /// Interfaces and type aliases declared at the top level.
    local_types: HashSet<String>,
    error: Option<BuildError>,
}

impl<'s> Stripper<'s> {
    fn blank(&mut self, start: u32, end: u32) {
        let end = (end as usize).min(self.buf.len());
        for b in &mut self.buf[(start as usize).min(end)..end] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    }

    fn blank_span(&mut self, span: Span) {
        self.blank(span.start, span.end);
    }

    /// Blanks `span` and a comma right after it (list elements).
    fn blank_with_comma(&mut self, span: Span) {
        let bytes = self.src.as_bytes();
        let mut end = span.end as usize;
        while end < bytes.len() && bytes[end].is_ascii_whitespace() {
            end += 1;
        }
        if end < bytes.len() && bytes[end] == b',' {
            self.blank(span.start, end as u32 + 1);
        } else {
            self.blank_span(span);
        }
    }

    /// Blanks every `ch` in `[start, end)`.
    fn blank_chars(&mut self, start: u32, end: u32, chars: &[u8]) {
        let end = (end as usize).min(self.buf.len());
        for i in (start as usize).min(end)..end {
            if chars.contains(&self.src.as_bytes()[i]) {
                self.buf[i] = b' ';
            }
        }
    }

    /// Blanks TypeScript modifier words in `[start, end)` (the text before a member's key).
    fn blank_modifiers(&mut self, start: u32, end: u32) {
        const WORDS: [&str; 7] = [
            "public",
            "private",
            "protected",
            "readonly",
            "override",
            "declare",
            "abstract",
        ];
        let text = &self.src[start as usize..end as usize];
        let mut i = 0;
        let bytes = text.as_bytes();
        while i < bytes.len() {
            if bytes[i].is_ascii_alphabetic() {
                let w_start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if WORDS.contains(&&text[w_start..i]) {
                    self.blank(start + w_start as u32, start + i as u32);
                }
            } else {
                i += 1;
            }
        }
    }

    fn unsupported(&mut self, span: Span, what: &str) {
        if self.error.is_none() {
            self.error = Some(BuildError::Unsupported {
                at: Position::at(self.name, self.src, span.start),
                what: what.to_owned(),
            });
        }
    }

    fn record(&mut self, lit: &StringLiteral<'_>, kind: ImportKind) {
        self.imports.push(ImportRef {
            specifier: lit.value.to_string(),
            span: lit.span,
            kind,
        });
    }

    fn collect_local_types(&mut self, body: &[Statement<'_>]) {
        for stmt in body {
            let decl = match stmt {
                Statement::ExportDeclaration(e) => &e.declaration,
                other => match other.as_declaration() {
                    Some(d) => d,
                    None => continue,
                },
            };
            match decl {
                Declaration::TSTypeAliasDeclaration(t) => {
                    self.local_types.insert(t.id.name.to_string());
                }
                Declaration::TSInterfaceDeclaration(i) => {
                    self.local_types.insert(i.id.name.to_string());
                }
                _ => {}
            }
        }
    }

    /// Drops import specifiers never used as values (TypeScript's import elision, as
    /// esbuild does it per file), and `export { T }` of types.
    fn elide_type_only_imports(&mut self) {
        let decls = std::mem::take(&mut self.import_decls);
        let mut elided_names = HashSet::new();
        for d in &decls {
            if !d.has_specifier_list {
                continue;
            }
            let unused: Vec<&(Span, String)> = d
                .specifiers
                .iter()
                .filter(|(_, local)| !self.value_refs.contains(local))
                .collect();
            for (_, local) in &unused {
                elided_names.insert(local.clone());
            }
            if !d.specifiers.is_empty() && unused.len() == d.specifiers.len() {
                self.blank_span(d.span);
            } else {
                for (span, _) in unused {
                    self.blank_with_comma(*span);
                }
            }
        }
        let specs = std::mem::take(&mut self.export_specs);
        for (span, local) in specs {
            if self.local_types.contains(&local) || elided_names.contains(&local) {
                self.blank_with_comma(span);
            }
        }
    }

    /// True if a declaration is types only (nothing of it runs).
    fn declaration_is_type_only(&mut self, decl: &Declaration<'_>) -> bool {
        match decl {
            Declaration::TSTypeAliasDeclaration(_) | Declaration::TSInterfaceDeclaration(_) => true,
            Declaration::VariableDeclaration(v) => v.declare,
            Declaration::FunctionDeclaration(f) => f.declare || f.body.is_none(),
            Declaration::ClassDeclaration(c) => c.declare,
            Declaration::TSEnumDeclaration(e) => e.declare,
            Declaration::TSExternalModuleDeclaration(m) => {
                if !m.declare {
                    self.unsupported(m.span, "a TypeScript module declaration");
                }
                true
            }
            Declaration::TSNamespaceDeclaration(n) => {
                if !n.declare {
                    self.unsupported(
                        n.span,
                        "a TypeScript namespace with values (use an ES module)",
                    );
                }
                true
            }
            Declaration::TSGlobalDeclaration(_) => true,
            Declaration::TSImportEqualsDeclaration(i) => {
                if i.import_kind == ImportOrExportKind::Value {
                    self.unsupported(i.span, "`import x = require(…)` (use `import x from …`)");
                }
                true
            }
        }
    }

    fn enum_code(&mut self, e: &TSEnumDeclaration<'_>) {
        let name = e.id.name.as_str();
        let src = self.src;
        let mut code = format!("var {name}; (function ({name}) {{");
        let mut cursor = e.span.start as usize;
        let mut prev: Option<(String, Option<f64>)> = None;
        for m in &e.body.members {
            let newlines = src[cursor..m.span.start as usize].matches('\n').count();
            code.push_str(&"\n".repeat(newlines));
            cursor = m.span.start as usize;
            let key = match &m.id {
                TSEnumMemberName::Identifier(i) => i.name.to_string(),
                TSEnumMemberName::String(s) | TSEnumMemberName::ComputedString(s) => {
                    s.value.to_string()
                }
                TSEnumMemberName::ComputedTemplateString(t) => {
                    self.unsupported(t.span, "a template literal enum member name");
                    return;
                }
            };
            let k = quote(&key);
            let (value_src, known, is_string) = match &m.initializer {
                None => match &prev {
                    None => ("0".to_owned(), Some(0.0), false),
                    Some((_, Some(n))) => (format!("{}", n + 1.0), Some(n + 1.0), false),
                    Some((pk, None)) => (format!("{name}[{}] + 1", quote(pk)), None, false),
                },
                Some(Expression::StringLiteral(s)) => (
                    src[s.span.start as usize..s.span.end as usize].to_owned(),
                    None,
                    true,
                ),
                Some(Expression::NumericLiteral(n)) => (
                    src[n.span.start as usize..n.span.end as usize].to_owned(),
                    Some(n.value),
                    false,
                ),
                Some(other) => {
                    let sp = other.span();
                    (
                        format!("({})", &src[sp.start as usize..sp.end as usize]),
                        None,
                        false,
                    )
                }
            };
            if is_string {
                code.push_str(&format!("{name}[{k}] = {value_src};"));
            } else {
                code.push_str(&format!("{name}[{name}[{k}] = {value_src}] = {k};"));
            }
            if is_identifier(&key) && key != name {
                code.push_str(&format!(" var {key} = {name}[{k}];"));
            }
            cursor = cursor.max(m.span.end as usize);
            prev = Some((key, known));
        }
        let newlines = src[cursor..e.span.end as usize].matches('\n').count();
        code.push_str(&"\n".repeat(newlines));
        code.push_str(&format!("}})({name} || ({name} = {{}}));"));
        self.replacements.push((e.span.start, e.span.end, code));
    }

    fn class_members(&mut self, class: &Class<'_>) {
        if class.r#abstract {
            // `abstract class`: the keyword sits at or just before the class's span.
            let from = class.span.start.saturating_sub(64) as usize;
            let to = (class.span.start as usize + 16).min(self.src.len());
            if let Some(i) = self.src[from..to].rfind("abstract") {
                let s = (from + i) as u32;
                self.blank(s, s + "abstract".len() as u32);
            }
        }
        if let Some(first) = class.implements.first() {
            let before = &self.src[..first.span.start as usize];
            if let Some(i) = before.rfind("implements") {
                let end = class
                    .implements
                    .last()
                    .map_or(first.span.end, |l| l.span.end);
                self.blank(i as u32, end);
            }
        }
        for el in &class.body.body {
            match el {
                ClassElement::TSIndexSignature(i) => self.blank_span(i.span),
                ClassElement::MethodDefinition(m) => {
                    if m.r#type == MethodDefinitionType::TSAbstractMethodDefinition
                        || m.value.body.is_none()
                    {
                        self.blank_span(m.span);
                        continue;
                    }
                    let key = m.key.span();
                    self.blank_modifiers(m.span.start, key.start);
                    if m.optional {
                        self.blank_chars(key.end, m.value.params.span.start, b"?");
                    }
                    if m.kind == MethodDefinitionKind::Constructor {
                        self.parameter_properties(class, m);
                    }
                }
                ClassElement::PropertyDefinition(p) => {
                    if p.declare || p.r#type == PropertyDefinitionType::TSAbstractPropertyDefinition
                    {
                        self.blank_span(p.span);
                        continue;
                    }
                    let key = p.key.span();
                    self.blank_modifiers(p.span.start, key.start);
                    let upto = p
                        .type_annotation
                        .as_ref()
                        .map(|t| t.span.start)
                        .or(p.value.as_ref().map(|v| v.span().start))
                        .unwrap_or(p.span.end);
                    self.blank_chars(key.end, upto, b"?!");
                }
                ClassElement::AccessorProperty(a) => {
                    let key = a.key.span();
                    self.blank_modifiers(a.span.start, key.start);
                }
                ClassElement::StaticBlock(_) => {}
            }
        }
    }

    fn parameter_properties(&mut self, class: &Class<'_>, ctor: &MethodDefinition<'_>) {
        let mut assigns = String::new();
        for p in &ctor.value.params.items {
            if p.accessibility.is_none() && !p.readonly && !p.r#override {
                continue;
            }
            self.blank(p.span.start, p.pattern.span().start);
            match &p.pattern {
                BindingPattern::BindingIdentifier(id) => {
                    assigns.push_str(&format!(" this.{0} = {0};", id.name));
                }
                _ => self.unsupported(p.span, "a parameter property that is not a plain name"),
            }
        }
        if assigns.is_empty() {
            return;
        }
        let Some(body) = &ctor.value.body else { return };
        // After `super(…);` when the class extends another, else at the top of the body.
        let mut at = body.span.start + 1;
        if class.heritage.is_some() {
            for stmt in &body.statements {
                if let Statement::ExpressionStatement(e) = stmt {
                    if let Expression::CallExpression(c) = &e.expression {
                        if matches!(c.callee, Expression::Super(_)) {
                            at = e.span.end;
                            break;
                        }
                    }
                }
            }
        }
        self.replacements.push((at, at, assigns));
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

impl<'a> Visit<'a> for Stripper<'_> {
    fn visit_statement(&mut self, stmt: &Statement<'a>) {
        if let Some(decl) = stmt.as_declaration() {
            if self.declaration_is_type_only(decl) {
                self.blank_span(stmt.span());
                return;
            }
        }
        match stmt {
            Statement::ImportDeclaration(d) => {
                if d.import_kind == ImportOrExportKind::Type {
                    self.blank_span(d.span);
                    return;
                }
                self.record(&d.source, ImportKind::Static);
                let mut decl = ImportDecl {
                    span: d.span,
                    specifiers: Vec::new(),
                    has_specifier_list: d.specifiers.is_some(),
                };
                for s in d.specifiers.iter().flatten() {
                    match s {
                        ImportDeclarationSpecifier::ImportSpecifier(s) => {
                            if s.import_kind == ImportOrExportKind::Type {
                                self.blank_with_comma(s.span);
                            } else {
                                decl.specifiers.push((s.span, s.local.name.to_string()));
                            }
                        }
                        ImportDeclarationSpecifier::ImportDefaultSpecifier(s) => {
                            decl.specifiers.push((s.span, s.local.name.to_string()));
                        }
                        ImportDeclarationSpecifier::ImportNamespaceSpecifier(s) => {
                            decl.specifiers.push((s.span, s.local.name.to_string()));
                        }
                    }
                }
                if self.ts {
                    self.import_decls.push(decl);
                }
            }
            Statement::ExportDeclaration(e) => {
                if self.declaration_is_type_only(&e.declaration) {
                    self.blank_span(e.span);
                    return;
                }
                walk::walk_statement(self, stmt);
            }
            Statement::ExportNamedDeclaration(e) => {
                if e.export_kind == ImportOrExportKind::Type {
                    self.blank_span(e.span);
                    return;
                }
                for s in &e.specifiers {
                    if s.export_kind == ImportOrExportKind::Type {
                        self.blank_with_comma(s.span);
                    } else {
                        self.export_specs.push((s.span, s.local.name().to_string()));
                        self.visit_export_specifier(s);
                    }
                }
            }
            Statement::ExportFromDeclaration(e) => {
                if e.export_kind == ImportOrExportKind::Type {
                    self.blank_span(e.span);
                    return;
                }
                for s in &e.specifiers {
                    if s.export_kind == ImportOrExportKind::Type {
                        self.blank_with_comma(s.span);
                    }
                }
                self.record(&e.source, ImportKind::Static);
            }
            Statement::ExportAllDeclaration(e) => {
                if e.export_kind == ImportOrExportKind::Type {
                    self.blank_span(e.span);
                    return;
                }
                self.record(&e.source, ImportKind::Static);
            }
            Statement::ExportDefaultDeclaration(e) => match &e.declaration {
                ExportDefaultDeclarationKind::TSInterfaceDeclaration(_) => self.blank_span(e.span),
                ExportDefaultDeclarationKind::FunctionDeclaration(f) if f.body.is_none() => {
                    self.blank_span(e.span)
                }
                _ => walk::walk_statement(self, stmt),
            },
            Statement::TSExportAssignment(e) => {
                self.unsupported(e.span, "`export =` (use `export default`)")
            }
            Statement::TSNamespaceExportDeclaration(e) => self.blank_span(e.span),
            _ => walk::walk_statement(self, stmt),
        }
    }

    fn visit_ts_enum_declaration(&mut self, it: &TSEnumDeclaration<'a>) {
        // `declare enum` was blanked with its statement; this one runs.
        self.enum_code(it);
        for m in &it.body.members {
            if let Some(init) = &m.initializer {
                self.visit_expression(init);
            }
        }
    }

    fn visit_identifier_reference(&mut self, it: &IdentifierReference<'a>) {
        self.value_refs.insert(it.name.to_string());
    }

    fn visit_ts_type_annotation(&mut self, it: &TSTypeAnnotation<'a>) {
        self.blank_span(it.span);
    }

    fn visit_ts_type_parameter_declaration(&mut self, it: &TSTypeParameterDeclaration<'a>) {
        self.blank_span(it.span);
    }

    fn visit_ts_type_parameter_instantiation(&mut self, it: &TSTypeParameterInstantiation<'a>) {
        self.blank_span(it.span);
    }

    fn visit_ts_class_implements(&mut self, _it: &TSClassImplements<'a>) {}

    fn visit_ts_this_parameter(&mut self, it: &TSThisParameter<'a>) {
        self.blank_with_comma(it.span);
    }

    fn visit_ts_as_expression(&mut self, it: &TSAsExpression<'a>) {
        self.blank(it.expression.span().end, it.span.end);
        self.visit_expression(&it.expression);
    }

    fn visit_ts_satisfies_expression(&mut self, it: &TSSatisfiesExpression<'a>) {
        self.blank(it.expression.span().end, it.span.end);
        self.visit_expression(&it.expression);
    }

    fn visit_ts_type_assertion(&mut self, it: &TSTypeAssertion<'a>) {
        self.blank(it.span.start, it.expression.span().start);
        self.visit_expression(&it.expression);
    }

    fn visit_ts_non_null_expression(&mut self, it: &TSNonNullExpression<'a>) {
        self.blank(it.expression.span().end, it.span.end);
        self.visit_expression(&it.expression);
    }

    fn visit_decorator(&mut self, it: &Decorator<'a>) {
        self.unsupported(it.span, "a decorator");
    }

    fn visit_formal_parameter(&mut self, it: &FormalParameter<'a>) {
        if it.optional {
            let upto = it
                .type_annotation
                .as_ref()
                .map_or(it.span.end, |t| t.span.start);
            self.blank_chars(it.pattern.span().end, upto, b"?");
        }
        walk::walk_formal_parameter(self, it);
    }

    fn visit_variable_declarator(&mut self, it: &VariableDeclarator<'a>) {
        if it.definite {
            let upto = it
                .type_annotation
                .as_ref()
                .map_or(it.span.end, |t| t.span.start);
            self.blank_chars(it.id.span().end, upto, b"!");
        }
        walk::walk_variable_declarator(self, it);
    }

    fn visit_class(&mut self, it: &Class<'a>) {
        if self.ts {
            self.class_members(it);
        }
        walk::walk_class(self, it);
    }

    fn visit_method_definition(&mut self, it: &MethodDefinition<'a>) {
        if it.r#type == MethodDefinitionType::TSAbstractMethodDefinition || it.value.body.is_none()
        {
            return;
        }
        walk::walk_method_definition(self, it);
    }

    fn visit_property_definition(&mut self, it: &PropertyDefinition<'a>) {
        if it.declare || it.r#type == PropertyDefinitionType::TSAbstractPropertyDefinition {
            return;
        }
        walk::walk_property_definition(self, it);
    }

    fn visit_ts_index_signature(&mut self, _it: &TSIndexSignature<'a>) {}

    fn visit_import_expression(&mut self, it: &ImportExpression<'a>) {
        if let Expression::StringLiteral(s) = &it.source {
            self.record(s, ImportKind::Dynamic);
        }
        walk::walk_import_expression(self, it);
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        if self.commonjs {
            if let (Expression::Identifier(callee), [Argument::StringLiteral(s)]) =
                (&it.callee, it.arguments.as_slice())
            {
                if callee.name == "require" {
                    self.record(s, ImportKind::Require);
                }
            }
        }
        walk::walk_call_expression(self, it);
    }

    fn visit_function(&mut self, it: &Function<'a>, flags: oxc_syntax::scope::ScopeFlags) {
        if it.body.is_none() {
            return; // an overload or `declare function`: blanked by its statement or member
        }
        walk::walk_function(self, it, flags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(src: &str) -> String {
        parse("t.ts", src, Lang::TypeScript)
            .expect("parses")
            .finish(&[])
    }

    fn assert_js(out: &str) {
        let allocator = Allocator::default();
        let ret = Parser::new(&allocator, out, SourceType::mjs()).parse();
        assert!(
            !ret.diagnostics.has_errors(),
            "not JavaScript: {:?}\n{out}",
            ret.diagnostics
                .errors()
                .map(|e| e.message.to_string())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn types_are_blanked_and_lines_kept() {
        let src = "import type { A } from './a';\nimport { type B, C } from './c';\ninterface I {\n  x: number;\n}\ntype T = string;\nexport function f<T>(a: number, b?: string): T {\n  return (a as any) satisfies T;\n}\nconst x = C!;\nlet y!: number;\nexport type { I };\n";
        let out = strip(src);
        assert_eq!(out.lines().count(), src.lines().count());
        assert_js(&out);
        assert!(!out.contains("number"), "{out}");
        assert!(out.contains("import {         C } from './c';"), "{out}");
        assert!(
            out.contains("export function f   (a        , b         )    {"),
            "{out}"
        );
    }

    #[test]
    fn enums_and_parameter_properties_run() {
        let src = "export enum Color {\n  Red,\n  Green = 5,\n  Blue,\n  Name = \"n\",\n}\nclass Base {}\nclass A extends Base implements X {\n  private readonly q?: number;\n  constructor(private db: string, public n = 1) {\n    super();\n  }\n}\n";
        let out = strip(src);
        assert_eq!(out.lines().count(), src.lines().count(), "{out}");
        assert_js(&out);
        assert!(
            out.contains("Color[Color[\"Red\"] = 0] = \"Red\";"),
            "{out}"
        );
        assert!(
            out.contains("Color[Color[\"Blue\"] = 6] = \"Blue\";"),
            "{out}"
        );
        assert!(out.contains("super(); this.db = db; this.n = n;"), "{out}");
        assert!(!out.contains("implements"), "{out}");
    }

    #[test]
    fn unused_imports_are_elided_as_typescript_does() {
        let out = strip("import { Context, Hono } from 'hono';\nimport D from 'd';\nconst app = new Hono();\nfunction h(c: Context) {}\n");
        assert!(
            out.contains("import {          Hono } from 'hono';"),
            "{out}"
        );
        assert!(!out.contains("from 'd'"), "{out}");
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = parse(
            "src/x.ts",
            "const a = 1;\nconst b: = 2;\n",
            Lang::TypeScript,
        )
        .expect_err("syntax error");
        let msg = err.to_string();
        assert!(msg.contains("src/x.ts:2:"), "{msg}");
        assert!(msg.contains("const b: = 2;"), "{msg}");
    }

    #[test]
    fn imports_and_requires_are_found() {
        let p = parse(
            "a.cjs",
            "const x = require('x'); const y = require(name);",
            Lang::CommonJs,
        )
        .expect("parses");
        assert_eq!(p.imports.len(), 1);
        assert_eq!(p.imports[0].specifier, "x");
        let p = parse("b.js", "module.exports = 1; require('z')", Lang::Unknown).expect("parses");
        assert!(p.commonjs);
        let p = parse(
            "e.cts",
            "const x: number = require('./x');\nmodule.exports = x;",
            Lang::of("e.cts").expect("a script"),
        )
        .expect("parses");
        assert!(p.commonjs, ".cts is CommonJS TypeScript");
        assert_eq!(p.imports.len(), 1);
        let p = parse("c.js", "export * from './d'; import('./e')", Lang::Unknown).expect("parses");
        assert!(!p.commonjs);
        assert_eq!(p.imports.len(), 2);
    }
}
