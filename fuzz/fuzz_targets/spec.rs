//! Fuzz target `spec`: see `repro_fuzz::checks::spec` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| repro_fuzz::checks::spec(data));
