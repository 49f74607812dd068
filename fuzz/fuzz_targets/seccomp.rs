//! Fuzz target `seccomp`: see `harness::seccomp` for what it feeds and what must hold.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::seccomp(data);
});
