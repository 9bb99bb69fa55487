//! Why a build failed: [`BuildError`], each naming the file (and the line, for source errors)
//! and the specifier, so a deploy error says what to fix.

use std::fmt;

/// A place in a source file: `file:line:col` and the text of that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The module name (a path relative to the function's directory).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The line's text.
    pub line_text: String,
}

impl Position {
    /// The position of byte `offset` of `source`.
    pub fn at(file: &str, source: &str, offset: u32) -> Position {
        let offset = (offset as usize).min(source.len());
        let offset = (0..=offset)
            .rev()
            .find(|i| source.is_char_boundary(*i))
            .unwrap_or(0);
        let before = &source[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[offset..]
            .find('\n')
            .map_or(source.len(), |i| offset + i);
        Position {
            file: file.to_owned(),
            line: before.matches('\n').count() + 1,
            column: source[line_start..offset].chars().count() + 1,
            line_text: source[line_start..line_end]
                .trim_end_matches('\r')
                .to_owned(),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why what a user deployed could not be built into a bundle. Nothing is deployed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A module does not parse.
    #[error("{at}: SyntaxError: {message}\n  {}", at.line_text)]
    Syntax {
        /// Where.
        at: Position,
        /// The parser's message.
        message: String,
    },
    /// A construct the build does not support (TypeScript namespaces with values, decorators,
    /// `export =`).
    #[error("{at}: {what} is not supported\n  {}", at.line_text)]
    Unsupported {
        /// Where.
        at: Position,
        /// What.
        what: String,
    },
    /// A relative import names no file.
    #[error("{file}: cannot resolve import {specifier:?}: {reason}")]
    Unresolved {
        /// The importing module.
        file: String,
        /// The specifier as written.
        specifier: String,
        /// Why.
        reason: String,
    },
    /// A bare import names a package that is not installed.
    #[error("{file}: cannot resolve import {specifier:?}: package {package:?} is not in node_modules (run npm install)")]
    MissingPackage {
        /// The importing module.
        file: String,
        /// The specifier as written.
        specifier: String,
        /// The package name.
        package: String,
    },
    /// A Node built-in module (`node:fs`, `fs`), which functions do not have.
    #[error(
        "{file}: imports {specifier:?}: Node built-in modules are not available in a function"
    )]
    NodeBuiltin {
        /// The importing module.
        file: String,
        /// The specifier as written.
        specifier: String,
    },
    /// A file (or a symlink's target) outside the function's directory.
    #[error(
        "{file}: {path} is outside the function's directory (symlinks may only point inside it)"
    )]
    OutsideDirectory {
        /// The importing module, or the file that is a symlink.
        file: String,
        /// The path that leaves the directory.
        path: String,
    },
    /// A file over the size limit, or too many files or bytes in all.
    #[error("{file}: {reason}")]
    TooLarge {
        /// The file.
        file: String,
        /// Which limit.
        reason: String,
    },
    /// A file could not be read.
    #[error("{file}: {reason}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// The bundle that resulted is not valid.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
}
