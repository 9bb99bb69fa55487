//! libFuzzer target: the session state machine driven by a hostile peer
//! (`capnweb_fuzz::session_machine`). `bash scripts/fuzz.sh 600 session_machine` runs it
//! coverage-guided on stable Rust.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    capnweb_fuzz::session_machine(data);
});
