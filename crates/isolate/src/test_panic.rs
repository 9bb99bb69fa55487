//! Test only (cargo feature `test-panic`): a global `__functionsTestPanic(how)` that makes a
//! job panic on the isolate's JavaScript thread, to prove that a panic there is contained
//! (`tests/panic.rs`). `how` is `"job"` (the next job posted to this isolate panics in Rust, as
//! a bug in the host would) or `"native"` (this native panics; rquickjs carries the panic
//! through QuickJS and resumes it once back in Rust).

use std::rc::Weak;

use rquickjs::{Ctx, Exception, Function};

use crate::host::Host;

pub(crate) fn install<'js>(ctx: &Ctx<'js>, host: Weak<Host>) -> rquickjs::Result<()> {
    ctx.globals().set(
        "__functionsTestPanic",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, how: String| -> rquickjs::Result<()> {
                if how == "native" {
                    panic!("test panic in a native");
                }
                let shared = host
                    .upgrade()
                    .and_then(|h| h.shared())
                    .ok_or_else(|| Exception::throw_internal(&ctx, "the isolate is gone"))?;
                shared.post(|_, _| panic!("test panic in a job"));
                Ok(())
            },
        )?,
    )
}
