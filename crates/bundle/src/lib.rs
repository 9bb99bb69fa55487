//! From what a user deploys to a bundle.
//!
//! - [`manifest`]: the one bundle type ([`Bundle`], [`Module`], [`Binding`]) and its parser,
//!   used by the server's deploy API and (for modules) by the Worker Loader's `WorkerCode`.
//! - [`build()`]: TypeScript (`.ts`, `.mts`, `.cts`) stripped line for line with oxc, bare
//!   imports resolved from `node_modules` by Node's rules with Workers' conditions
//!   (oxc_resolver; the conditions are the bundle's `conditions`, see [`BuildOptions`]), only
//!   the package files reached from the function's own modules kept, each import rewritten to
//!   its target's module-map name. The Node built-ins the isolate provides (`buffer`,
//!   `events`, `util`, bare or `node:`) are left to it; any other Node built-in fails the build.
//! - [`types::declarations`]: TypeScript declarations of a function's RPC surface and `Env`
//!   (`functions types`).
//! - [`fs::SourceFs`]: the files a build sees: in memory (the server) or a directory on disk
//!   behind them (the CLI), with symlinks kept inside the directory and sizes checked.
//!
//! ```
//! use bundle::{build, memory_fs, BuildOptions, Bundle, Module};
//! let deployed = Bundle::from_json(br#"{
//!     "mainModule": "index.ts",
//!     "modules": { "index.ts": "const n: number = 1; export default { fetch() { return new Response(String(n)) } }" }
//! }"#).unwrap();
//! let built = build(&deployed, &memory_fs(&deployed), &BuildOptions::default()).unwrap();
//! assert!(matches!(&built.modules["index.ts"], Module::EsModule(s) if s.starts_with("const n         = 1;")));
//! ```
//!
//! It does not run code, bundle modules into one file, minify, or produce source maps (the
//! output keeps every line where it was, so none are needed). `.tsx`/JSX is not supported.

pub mod build;
pub mod error;
pub mod fs;
pub mod manifest;
pub mod strip;
pub mod types;

pub use build::{
    build, is_provided_node_builtin, memory_fs, module_from_file, BuildOptions, DEFAULT_CONDITIONS,
    NODE_BUILTINS,
};
pub use error::{BuildError, Position};
pub use manifest::{Binding, BindingQuota, Bundle, Limits, ManifestError, MaxLimits, Module};
