//! libFuzzer target: `cargo +nightly fuzz run decode_message` from the repository root
//! with the seed corpus: `cargo fuzz run decode_message fuzz/seeds`. The harness itself is `capnweb_fuzz::decode_message`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| capnweb_fuzz::decode_message(data));
