//! Fuzz target `formula`: see `repro_fuzz::checks::formula` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| repro_fuzz::checks::formula(data));
