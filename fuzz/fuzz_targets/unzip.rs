//! Fuzz target `unzip`: see `repro_fuzz::checks::unzip` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| repro_fuzz::checks::unzip(data));
