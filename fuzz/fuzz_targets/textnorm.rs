//! Fuzz target `textnorm`: see `repro_fuzz::checks::textnorm` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| repro_fuzz::checks::textnorm(data));
