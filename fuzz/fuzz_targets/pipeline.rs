//! Fuzz target `pipeline`: see `repro_fuzz::checks::pipeline` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| repro_fuzz::checks::pipeline(data));
