//! The deploy bundle: the one bundle type and parser live in the `bundle` crate
//! ([`bundle::manifest`]); this module re-exports them under the server's historic path.

pub use bundle::manifest::*;
