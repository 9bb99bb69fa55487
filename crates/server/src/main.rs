//! The `functions` binary.

fn main() {}
